-- skynet.remotedebug: the debugger inside a debugged service.
--
-- debug_console's `debug <address>` starts a debug_agent, which makes a
-- debugchannel and sends the target the "debug" command REMOTEDEBUG with the
-- console's socket and the channel's address; skynet/debug.lua calls start()
-- here. The agent writes every line typed on the console into the channel.
--
-- While a session is on, every message this service dispatches first reads the
-- lines waiting in the channel (a 0.1 s timer keeps messages coming), so the
-- service goes on serving while it is debugged. A line is Lua, run with
-- `print` going to the console and `watch(protoname [, cond])`, which traces
-- the next request of that protocol (for which cond(...) is true): the handler
-- stops at its first line, its coroutine suspended by the hook
-- (debugchannel.sethook), and the prompt shows file(line). Then
--   s        step: stop at the next line, entering calls
--   n        next: stop at the next line of this function or its callers
--   c        continue: the handler runs on untraced
--   other    Lua run inside the stopped frame: its locals, upvalues and `...`
-- skynet's own framework (skynet.lua) is stepped over, never into. `cont`
-- ends the session: traces are dropped, a stopped handler runs on, and the
-- REMOTEDEBUG request is answered.
local skynet = require "skynet"
local debugchannel = require "skynet.debugchannel"
local socketdriver = require "skynet.socketdriver"
local injectcode = require "skynet.injectcode"

local sethook = debugchannel.sethook

-- the upvalue of the dispatcher (export.dispatch) that handles one message
local DISPATCH_UPVALUE = "raw_dispatch_message"
local FRAMEWORK = debug.getinfo(skynet.start, "S").source
local SELF = debug.getinfo(1, "S").source

local session	-- the debug session, if one is on
-- coroutine -> its trace { mode = "step"|"next", depth, skip, stop_depth }
local traced = setmetatable({}, { __mode = "k" })
-- coroutines suspended at a stop, in the order they stopped
local stopped = {}

local function upvalue_slot(func, name)
	local i = 1
	while true do
		local n = debug.getupvalue(func, i)
		if n == nil then
			return nil
		end
		if n == name then
			return i
		end
		i = i + 1
	end
end

local function own_prompt()
	return string.format(":%08x>", skynet.self())
end

local function set_prompt(prompt)
	session.prompt = prompt
	session.show_prompt = true
end

---------------------------------------------------------------------------
-- tracing a handler

local function end_trace(co)
	traced[co] = nil
	sethook(co)
	if session then
		set_prompt(own_prompt())
	end
end

-- The hook of a traced coroutine, on its own thread. Depth counts the frames
-- above the watch wrapper (0), whose own lines never stop; the wrapper
-- returning ends the trace.
local function on_event(event, line)
	local co = coroutine.running()
	local trace = traced[co]
	if trace == nil then
		sethook(co)
		return
	end
	if not trace.armed then
		return
	end
	if event == "call" then
		trace.depth = trace.depth + 1
		if trace.skip == nil and debug.getinfo(2, "S").source == FRAMEWORK then
			trace.skip = trace.depth
		end
	elseif event == "return" then
		trace.depth = trace.depth - 1
		if trace.skip and trace.depth < trace.skip then
			trace.skip = nil
		end
		if trace.depth < 0 then
			-- the watch wrapper itself returns: the request is handled
			end_trace(co)
		end
	elseif event == "line" then
		if trace.depth < 1 or trace.skip then
			return
		end
		local where = debug.getinfo(2, "S")
		if where.source == SELF then
			return
		end
		if trace.mode == "next" and trace.depth > trace.stop_depth then
			return
		end
		trace.stop_depth = trace.depth
		stopped[#stopped + 1] = co
		if session then
			set_prompt(string.format("%s(%d)>", where.short_src, line))
		end
		return true	-- suspends the coroutine here
	end
	-- "tail call" replaces a frame: the depth stays
end

-- Called by the watch wrapper in the handler's coroutine; the wrapper arms the
-- trace once this has returned, so the depth starts at its frame, 0.
local function start_trace()
	local co = coroutine.running()
	local trace = { mode = "step", depth = 0, armed = false }
	traced[co] = trace
	sethook(co, on_event, "crl")
	return trace
end

local function resume(co, export)
	for i, c in ipairs(stopped) do
		if c == co then
			table.remove(stopped, i)
			break
		end
	end
	if session then
		set_prompt(own_prompt())
	end
	local ok, err = pcall(export.suspend, co, export.resume(co))
	if not ok then
		skynet.error(err)
		if session then
			session.print(err)
		end
	end
end

---------------------------------------------------------------------------
-- watch(protoname [, cond]): trace the next request of that protocol

local function watch(protoname, cond)
	local p = skynet._proto[protoname]
	if p == nil then
		return "No " .. protoname
	end
	local original = session.watching[protoname] or p.dispatch
	if original == nil then
		return "No dispatch"
	end
	session.watching[protoname] = original
	p.dispatch = function(...)
		if cond == nil or cond(...) then
			p.dispatch = original
			if session then
				session.watching[protoname] = nil
			end
			start_trace().armed = true
		end
		original(...)
	end
end

local function restore_watches()
	for protoname, original in pairs(session.watching) do
		skynet._proto[protoname].dispatch = original
	end
	session.watching = {}
end

---------------------------------------------------------------------------
-- console lines

local function print_results(print, ok, ...)
	if not ok then
		print((...))
	elseif select("#", ...) > 0 then
		print(...)
	end
end

-- Lua source that is an expression is run as `return <line>`, so its value prints.
local function as_chunk(line)
	if load("return " .. line, "=(debug)") then
		return "return " .. line
	end
	return line
end

local function run_plain(line)
	local chunk, err = load(as_chunk(line), "=(debug)", "t", session.env)
	if chunk == nil then
		session.print(err)
		return
	end
	print_results(session.print, pcall(chunk))
end

local function run_stopped(co, line)
	local export = session.export
	local trace = traced[co]
	if line == "s" or line == "n" then
		trace.mode = line == "s" and "step" or "next"
		resume(co, export)
	elseif line == "c" then
		end_trace(co)
		resume(co, export)
	else
		local ext = { print = session.print, _CO = co }
		print_results(session.print, injectcode(as_chunk(line), co, 0, ext))
	end
end

local function detach()
	local s = session
	restore_watches()
	local slot = upvalue_slot(s.export.dispatch, DISPATCH_UPVALUE)
	debug.setupvalue(s.export.dispatch, slot, s.original)
	session = nil
	for co in pairs(traced) do
		traced[co] = nil
		sethook(co)
	end
	while #stopped > 0 do
		resume(stopped[1], s.export)
	end
	skynet.error "Leave debug mode"
	s.respond(true)
end

local function poll()
	while session do
		if session.show_prompt then
			session.show_prompt = false
			socketdriver.send(session.fd, session.prompt)
		end
		local line = session.channel:read()
		if line == nil then
			return
		end
		if line == "cont" then
			detach()
			return
		end
		if line ~= "" then
			if stopped[1] then
				run_stopped(stopped[1], line)
			else
				run_plain(line)
			end
		end
		if session then
			session.show_prompt = true
		end
	end
end

---------------------------------------------------------------------------

local M = {}

-- start(export, fd, channel_address): export is skynet/debug.lua's
-- { dispatch, suspend, resume }; the console socket fd gets the output.
function M.start(export, fd, address)
	assert(session == nil, "Already in debug mode")
	local slot = assert(upvalue_slot(export.dispatch, DISPATCH_UPVALUE), "Can't find the dispatcher")
	skynet.error "Enter debug mode"
	-- every value and then the newline, tab-separated: "3\t\n", as upstream's
	local function console_print(...)
		local out = table.pack(...)
		for i = 1, out.n do
			out[i] = tostring(out[i])
		end
		out[out.n + 1] = "\n"
		socketdriver.send(fd, table.concat(out, "\t", 1, out.n + 1))
	end
	local _, original = debug.getupvalue(export.dispatch, slot)
	session = {
		export = export,
		fd = fd,
		channel = debugchannel.connect(address),
		respond = skynet.response(),
		original = original,
		print = console_print,
		env = setmetatable({ print = console_print, watch = watch }, { __index = _G }),
		watching = {},
	}
	set_prompt(own_prompt())
	debug.setupvalue(export.dispatch, slot, function(...)
		local ok, err = pcall(poll)
		if not ok then
			skynet.error(err)
		end
		return original(...)
	end)
	local function tick()
		if session then
			skynet.timeout(10, tick)
		end
	end
	skynet.timeout(0, tick)
end

return M
