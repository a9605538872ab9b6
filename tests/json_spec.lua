-- corio.json: lua-cjson underneath; integers, null, arrays, JSON errors.
local json = require "corio.json"

local function errof(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("json", function()
  it("round-trips objects, arrays, strings and numbers", function()
    local v = json.decode(json.encode({ a = "x\n\"y", b = { 1, 2, 3 }, c = 1.5, t = true }))
    assert.same({ a = "x\n\"y", b = { 1, 2, 3 }, c = 1.5, t = true }, v)
  end)

  it("gives whole numbers back as integers", function()
    local v = json.decode('{"a":1,"b":[-7,2.5,3e2],"big":12345678901234}')
    assert.equal("integer", math.type(v.a))
    assert.equal("integer", math.type(v.b[1]))
    assert.equal("float", math.type(v.b[2]))
    assert.equal(300, v.b[3])
    assert.equal(12345678901234, v.big)
    assert.equal("integer", math.type(json.decode("42")))
  end)

  it("integers round-trip exactly, past 2^53 and at the int64 limits", function()
    for _, i in ipairs({ math.maxinteger, math.mininteger, (1 << 53) + 1, -(1 << 53) - 1,
                         123456789012345678, 100000000000000, -99999999999999, 0 }) do
      local s = json.encode(i)
      assert.equal(("%d"):format(i), s)
      local back = json.decode(s)
      assert.equal("integer", math.type(back), s)
      assert.equal(i, back, s)
    end
    -- nested, as object values and array items, negative
    local v = { a = { math.maxinteger, { b = math.mininteger } }, c = -((1 << 53) + 1) }
    local s = json.encode(v)
    assert.truthy(s:find("9223372036854775807", 1, true))
    assert.truthy(s:find("-9223372036854775808", 1, true))
    assert.truthy(s:find("-9007199254740993", 1, true))
    local back = json.decode(s)
    assert.same(v, back)
    assert.equal("integer", math.type(back.a[2].b))
  end)

  it("decodes integer tokens exactly; tokens with '.', 'e', 'E' or past int64 are floats", function()
    local v = json.decode('[9223372036854775807,-9223372036854775808,9007199254740993,'
      .. '{"x" : 12345678901234567 , "y":[-1234567890123456789]},'
      .. '9223372036854775808,-9223372036854775809,1e2,1E2,2.0,-0,-0.0,1e400,-1e400,12]')
    assert.equal(math.maxinteger, v[1])
    assert.equal(math.mininteger, v[2])
    assert.equal((1 << 53) + 1, v[3])
    assert.equal("integer", math.type(v[3]))
    assert.equal(12345678901234567, v[4].x)
    assert.equal(-1234567890123456789, v[4].y[1])
    assert.equal("float", math.type(v[5]))
    assert.equal(2.0 ^ 63, v[5])
    assert.equal("float", math.type(v[6]))
    assert.equal(-(2.0 ^ 63), v[6])
    for i = 7, 9 do assert.equal("float", math.type(v[i]), i) end
    assert.equal(100.0, v[7])
    assert.equal(100.0, v[8])
    assert.equal(2.0, v[9])
    assert.equal("integer", math.type(v[10]))          -- "-0" is integer 0
    assert.equal(0, v[10])
    assert.equal("float", math.type(v[11]))            -- "-0.0" keeps its sign
    assert.equal(-math.huge, 1 / v[11])
    assert.equal(math.huge, v[12])                     -- as Python and JS
    assert.equal(-math.huge, v[13])
    assert.equal("integer", math.type(v[14]))
    -- a top-level token, and the same digits inside a string stay a string
    assert.equal(math.maxinteger, json.decode(" 9223372036854775807 "))
    assert.equal("9223372036854775807", json.decode('"9223372036854775807"'))
    assert.same({ s = "1e2 12345678901234567 \" 5" }, json.decode('{"s":"1e2 12345678901234567 \\\" 5"}'))
  end)

  it("floats round-trip exactly and stay floats", function()
    for _, x in ipairs({ 0.1, 1 / 3, 0.1 + 0.2, 2.0 ^ 53, 2.0 ^ 63, 3.0, -0.0, 1e300, -1.5e-300,
                         5e-324, 1.7976931348623157e308, 123456.0, 1e15, -2.5 }) do
      local s = json.encode(x)
      local back = json.decode(s)
      assert.equal("float", math.type(back), s)
      assert.equal(x, back, s)
      assert.equal(1 / x, 1 / back, s)                  -- -0.0 keeps its sign
    end
    assert.equal("3.0", json.encode(3.0))
    assert.equal("0.1", json.encode(0.1))
    assert.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    assert.equal("[1,2.5,-0.0]", json.encode({ 1, 2.5, -0.0 }))
  end)

  it("number keys are written with their exact digits", function()
    local s = json.encode({ [1 << 60] = "a", [0.1 + 0.2] = "b", x = 1 })
    local back = json.decode(s)
    assert.equal("a", back[("%d"):format(1 << 60)])
    assert.equal("b", back["0.30000000000000004"])
    assert.equal("JSON", errof(json.encode, { [1 << 60] = 1, [("%d"):format(1 << 60)] = 2 }).code)
  end)

  it("a JSON number used as a key is still an error", function()
    assert.equal("JSON", errof(json.decode, '{12345678901234567890:1}').code)
    assert.equal("JSON", errof(json.decode, '{"a":12345678901234567890:1}').code)
  end)

  it("strings can never turn into JSON text or numbers", function()
    -- whatever a string holds, it comes back as that string
    for _, str in ipairs({ "\0", "\0corio", "\0" .. ("0"):rep(16) .. "1" }) do
      assert.equal(str, json.decode(json.encode(str)))
      assert.same({ [str] = str }, json.decode(json.encode({ [str] = str })))
    end
    assert.same({ "x", 1 << 62, json.null },
      json.decode(json.encode({ "x", 1 << 62, json.null })))
  end)

  it("big numbers in a failing text give cjson's error on the original text", function()
    local e = errof(json.decode, '[12345678901234567890, x]')
    assert.equal("JSON", e.code)
    assert.matches("character 24", e.message)
  end)

  it("json.null stands for null both ways", function()
    local v = json.decode('{"n":null,"l":[null,1]}')
    assert.equal(json.null, v.n)
    assert.equal(json.null, v.l[1])
    assert.equal('{"n":null}', json.encode({ n = json.null }))
  end)

  it("empty tables are objects unless marked with json.array", function()
    assert.equal("{}", json.encode({}))
    assert.equal("[]", json.encode(json.array()))
    assert.equal('{"x":[]}', json.encode({ x = json.array({}) }))
    assert.equal("[1,2]", json.encode(json.array({ 1, 2 })))
  end)

  it("bad JSON raises a corio.Error with code JSON", function()
    for _, s in ipairs({ "{bad", "[1,", "", "nul", '{"a":1}x', "NaN" }) do
      local e = errof(json.decode, s)
      assert.equal("JSON", e.code, s)
      assert.equal("decode", e.op)
      assert.is_string(e.message)
    end
  end)

  it("unencodable values raise JSON errors", function()
    assert.equal("JSON", errof(json.encode, { f = print }).code)
    assert.equal("JSON", errof(json.encode, { 0 / 0 }).code)
    local t = {}
    t.self = t
    assert.equal("JSON", errof(json.encode, t).code)
    assert.equal("JSON", errof(json.encode, { [1] = 1, [1000] = 2 }).code)
  end)

  it("deep nesting is an error, not a crash", function()
    assert.equal("JSON", errof(json.decode, ("["):rep(5000) .. ("]"):rep(5000)).code)
  end)

  it("wrong argument types are bad arguments", function()
    assert.matches("bad argument #1 to 'decode'", errof(json.decode, 42))
    assert.matches("bad argument #1 to 'array'", errof(json.array, 42))
  end)
end)
