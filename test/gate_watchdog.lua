-- gate_watchdog: drives the native `gate` service for runtime/tests/gate.rs.
-- It launches the gate on the port given by the config key `gate_port`, starts every
-- connection the gate reports, echoes every packet back (framed like the input) through the gate (PTYPE_CLIENT:
-- bytes followed by the 4-byte little-endian socket id), and logs its counts so the
-- test can follow along: "gate ready", "opened N" every 100, "closed N" every 1000, and on the
-- text command "report" (sent by a client as the packet "report") the current counts.
local skynet = require "skynet"
require "skynet.manager"

local gate
local reply_format = ">s2"
local opened, closed = 0, 0

local function on_text(text)
	local id, what, rest = text:match("^(%d+) (%a+) ?(.*)$")
	if what == "open" then
		opened = opened + 1
		skynet.send(gate, "text", "start " .. id)
		if opened % 100 == 0 then
			skynet.error("opened " .. opened)
		end
	elseif what == "close" then
		closed = closed + 1
		if closed % 1000 == 0 then
			skynet.error("closed " .. closed)
		end
	elseif what == "data" then
		if rest == "report" then
			skynet.error(string.format("report opened %d closed %d", opened, closed))
		end
		local frame = string.pack(reply_format, rest) .. string.pack("<i4", tonumber(id))
		skynet.send(gate, "client", frame)
	end
end

skynet.register_protocol {
	name = "text",
	id = skynet.PTYPE_TEXT,
	pack = function(s) return s end,
	unpack = skynet.tostring,
	dispatch = function(_, _, text) on_text(text) end,
}

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
	pack = function(s) return s end,
}

skynet.start(function()
	local port = assert(skynet.getenv "gate_port")
	local header = skynet.getenv "gate_header" or "S"
	if header == "L" then
		reply_format = ">s4"
	end
	gate = skynet.launch("gate", header, skynet.address(skynet.self()), "127.0.0.1:" .. port, 0, 20000)
	skynet.error(gate and "gate ready" or "gate failed")
end)
