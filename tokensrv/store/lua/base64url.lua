-- fragment: base64url text -> bytes (the earlier family layout's digests: family_upgrade.lua)
local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
local function unbase64url(text)
  local bytes, acc, bits = {}, 0, 0
  for i = 1, #text do
    acc, bits = acc * 64 + string.find(B64, string.sub(text, i, i), 1, true) - 1, bits + 6
    if bits >= 8 then
      bits = bits - 8
      local byte = math.floor(acc / 2 ^ bits)
      table.insert(bytes, string.char(byte))
      acc = acc - byte * 2 ^ bits
    end
  end
  return table.concat(bytes)
end
