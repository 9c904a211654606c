-- An example policy script: no DELETE anywhere, and nothing under /admin.
--
-- Name it from the policy file (the path is relative to the policy file):
--
--   network:
--     allowed_hosts: [api.example.com]
--     policy_script: policy.lua
--
-- on_request(req) runs for every HTTP request the allowlist has already allowed, after
-- TLS termination for HTTPS. It can only deny further. Return nothing or true to allow,
-- false to deny, or false and a message for the audit event. An error, a runaway loop or
-- a wrong return value denies too (reason policy_script_error): the script fails closed.
-- Globals set here persist from one request to the next.

-- The path as a server would likely see it: %XX decoded, case folded, repeated slashes
-- squeezed and "." / ".." segments resolved, so "/x/../%41dmin//" still counts as /admin.
-- The patterns below are anchored or single-character classes: they run in linear time,
-- which matters because the path is chosen by the guest.
local function normalise(path)
  path = path:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end)
  path = path:lower()
  local segments = {}
  for segment in path:gmatch("[^/]+") do
    if segment == ".." then
      segments[#segments] = nil
    elseif segment ~= "." then
      segments[#segments + 1] = segment
    end
  end
  return "/" .. table.concat(segments, "/")
end

local function under(path, prefix)
  return path == prefix or path:sub(1, #prefix + 1) == prefix .. "/"
end

function on_request(req)
  if req.method == "DELETE" then
    return false, "DELETE is not allowed (" .. req.host .. req.path .. ")"
  end
  if under(normalise(req.path), "/admin") then
    return false, "the /admin area is off limits"
  end
  return true
end
