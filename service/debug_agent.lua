-- debug_agent: one per `debug <address>` console command. It makes the
-- debugchannel, attaches skynet.remotedebug to the target (the "debug"
-- command REMOTEDEBUG, answered only when the session ends) and writes every
-- console line it is sent into the channel. It exits with the session.
--
--   start(address, fd) -> true | false, "Debugger attach failed"
--   cmd(line)          one console line for the debugger
--   ping()             answered while the agent lives
local skynet = require "skynet"
local debugchannel = require "skynet.debugchannel"

local channel	-- the writer end, once started

local CMD = {}

function CMD.start(address, fd)
	assert(channel == nil, "start more than once")
	skynet.error(string.format("Attach to :%08x", address))
	local channel_address
	channel, channel_address = debugchannel.create()
	if pcall(skynet.call, address, "debug", "REMOTEDEBUG", fd, channel_address) then
		skynet.retpack(true)
	else
		skynet.retpack(false, "Debugger attach failed")
	end
	skynet.exit()
end

function CMD.cmd(line)
	if channel then
		channel:write(line)
	end
end

function CMD.ping()
	skynet.ret()
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		local f = assert(CMD[cmd], cmd)
		f(...)
	end)
end)
