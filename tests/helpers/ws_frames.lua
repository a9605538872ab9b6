-- tests/helpers/ws_frames.lua -- raw WebSocket frames for the ws specs:
-- frames built and read by hand, so corio is checked against RFC 6455
-- rather than against itself.
local F = {}

-- frame(op, payload, opts): one frame; opts.fin = false (a fragment),
-- opts.rsv (bits), opts.mask (masked with the key 1 2 3 4), opts.len126
-- (a 16-bit length even for a short payload).
function F.frame(op, payload, opts)
  opts = opts or {}
  local b1 = (opts.fin == false and 0 or 0x80) | op | (opts.rsv or 0)
  local n = #payload
  local mask = opts.mask
  local mbit = mask and 0x80 or 0
  local len
  if opts.len126 or (n >= 126 and n < 65536) then
    len = string.pack(">BI2", mbit | 126, n)
  elseif n >= 65536 then
    len = string.pack(">BI8", mbit | 127, n)
  else
    len = string.char(mbit | n)
  end
  if not mask then return string.char(b1) .. len .. payload end
  local key = "\1\2\3\4"
  local out = {}
  for i = 1, n do
    out[i] = string.char(payload:byte(i) ~ key:byte((i - 1) % 4 + 1))
  end
  return string.char(b1) .. len .. key .. table.concat(out)
end

-- Reads one frame: op, payload, fin, masked.
-- keep_mask: return a masked payload as it was sent (unmasking a large one
-- byte by byte in Lua takes seconds, and a length check does not need it)
function F.read_frame(s, keep_mask)
  local h = s:readexactly(2)
  local b1, b2 = h:byte(1, 2)
  local n = b2 & 0x7f
  if n == 126 then n = string.unpack(">I2", s:readexactly(2))
  elseif n == 127 then n = string.unpack(">I8", s:readexactly(8)) end
  local masked = b2 & 0x80 ~= 0
  local key = masked and s:readexactly(4)
  local p = n > 0 and s:readexactly(n) or ""
  if masked and not keep_mask then
    local out = {}
    for i = 1, n do
      out[i] = string.char(p:byte(i) ~ key:byte((i - 1) % 4 + 1))
    end
    p = table.concat(out)
  end
  return b1 & 0x0f, p, b1 & 0x80 ~= 0, masked
end

return F
