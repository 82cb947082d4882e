-- skynet.datacenter: client side of datacenterd (global name DATACENTER).
-- Keys form a path into a node-wide tree: get("a", "b") reads a.b.
local skynet = require "skynet"

local datacenter = {}

-- get(k1, ..., kn): the value at that path (a subtree comes back as a table).
function datacenter.get(...)
	return skynet.call("DATACENTER", "lua", "QUERY", ...)
end

-- set(k1, ..., kn, value): store value (nil deletes); returns the old value.
function datacenter.set(...)
	return skynet.call("DATACENTER", "lua", "UPDATE", ...)
end

-- wait(k1, ..., kn): like get, but blocks until the path holds a value. It
-- raises an error if the path turns into a branch instead.
function datacenter.wait(...)
	return skynet.call("DATACENTER", "lua", "WAIT", ...)
end

return datacenter
