-- skynet/harborpacket.lua: the packets between cmaster and its cslaves. A packet
-- is one length byte followed by skynet.packstring of its fields, the first
-- field being a one-letter type:
--   slave -> master  H id address | R name handle | Q name
--   master -> slave  W count | C id address | N name handle | D id

local skynet = require "skynet"
local socket = require "skynet.socket"

local packet = {}

function packet.pack(...)
	local body = skynet.packstring(...)
	assert(#body <= 255, "too long")
	return string.char(#body) .. body
end

-- Reads one packet from `fd`; raises "closed" when the socket closes.
function packet.read(fd)
	local len = assert(socket.read(fd, 1), "closed")
	local body = assert(socket.read(fd, string.byte(len)), "closed")
	return skynet.unpack(body)
end

function packet.write(fd, ...)
	socket.write(fd, packet.pack(...))
end

return packet
