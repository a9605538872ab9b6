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
