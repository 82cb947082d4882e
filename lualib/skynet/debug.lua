-- skynet/debug.lua: the "debug" protocol every Lua service answers.
--
-- skynet.lua calls init() once while it loads, handing over the dispatcher
-- and its resume/suspend pair (needed by the remote debugger). Commands are
-- what debug_console, the launcher and snax send: MEM, GC, STAT, TASK,
-- UNIQTASK, KILLTASK, INFO, EXIT, RUN, TERM, REMOTEDEBUG, SUPPORT, PING,
-- LINK, TRACELOG. Other modules can add commands with reg_debugcmd.

local extra_commands = {}

local function build_commands(skynet, export)
	local commands = {}
	local info_func

	function skynet.info_func(func)
		info_func = func
	end

	function commands.MEM()
		skynet.ret(skynet.pack(collectgarbage "count"))
	end

	-- the launcher broadcasts GC; a second request arriving while we yield
	-- below is ignored
	local collecting = false
	function commands.GC()
		if collecting then
			return
		end
		collecting = true
		local before_kb, before_time = collectgarbage "count", skynet.now()
		collectgarbage "collect"
		skynet.yield()
		local after_kb, after_time = collectgarbage "count", skynet.now()
		skynet.error(string.format("GC %.2f Kb -> %.2f Kb, cost %.2f sec",
			before_kb, after_kb, (after_time - before_time) / 100))
		collecting = false
	end

	function commands.STAT()
		skynet.ret(skynet.pack {
			task = skynet.task(),
			mqlen = skynet.stat "mqlen",
			cpu = skynet.stat "cpu",
			message = skynet.stat "message",
		})
	end

	function commands.KILLTASK(threadname)
		local co = skynet.killthread(threadname)
		if co then
			skynet.error(string.format("Kill %s", co))
			skynet.ret()
		else
			skynet.error(string.format("Kill %s : Not found", threadname))
			skynet.ret(skynet.pack "Not found")
		end
	end

	function commands.TASK(session)
		if session then
			skynet.ret(skynet.pack(skynet.task(session)))
		else
			local list = {}
			skynet.task(list)
			skynet.ret(skynet.pack(list))
		end
	end

	function commands.UNIQTASK()
		skynet.ret(skynet.pack(skynet.uniqtask()))
	end

	function commands.INFO(...)
		if info_func then
			skynet.ret(skynet.pack(info_func(...)))
		else
			skynet.ret(skynet.pack(nil))
		end
	end

	function commands.EXIT()
		skynet.exit()
	end

	function commands.RUN(source, filename, ...)
		local inject = require "skynet.inject"
		local ok, output = inject(skynet, source, filename, table.pack(...),
			export.dispatch, skynet.register_protocol)
		collectgarbage "collect"
		skynet.ret(skynet.pack(ok, table.concat(output, "\n")))
	end

	function commands.TERM(service)
		skynet.term(service)
	end

	function commands.REMOTEDEBUG(...)
		require("skynet.remotedebug").start(export, ...)
	end

	function commands.SUPPORT(pname)
		return skynet.ret(skynet.pack(skynet.dispatch(pname) ~= nil))
	end

	function commands.PING()
		return skynet.ret()
	end

	-- never answered: the caller learns that we exited when skynet.exit
	-- fails every open response
	function commands.LINK()
		skynet.response()
	end

	function commands.TRACELOG(protoname, flag)
		if type(protoname) ~= "string" then
			protoname, flag = "lua", protoname
		end
		skynet.error(string.format("Turn trace log %s for %s", flag, protoname))
		skynet.traceproto(protoname, flag)
		skynet.ret()
	end

	return commands
end

local function init(skynet, export)
	local commands = build_commands(skynet, export)
	skynet.register_protocol {
		name = "debug",
		id = assert(skynet.PTYPE_DEBUG),
		pack = assert(skynet.pack),
		unpack = assert(skynet.unpack),
		dispatch = function(_, _, cmd, ...)
			local f = commands[cmd] or extra_commands[cmd]
			assert(f, cmd)
			f(...)
		end,
	}
end

local function reg_debugcmd(name, fn)
	extra_commands[name] = fn
end

return {
	init = init,
	reg_debugcmd = reg_debugcmd,
}
