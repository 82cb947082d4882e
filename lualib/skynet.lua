-- skynet.lua: the Lua side of a skynet service.
--
-- Owns everything a service needs on top of the native `skynet.core` module:
-- the protocol registry, session bookkeeping for calls/timers/sleeps, the
-- pool of task coroutines that run message handlers, the per-message
-- dispatcher (with its fork queue), responses, request objects (select),
-- dead-service detection, service start-up/exit, tracing and the small
-- query helpers (env, time, address, stat, task listing).
--
-- Two local names below are part of the public contract even though they are
-- locals: debug injection (skynet.inject, skynet.remotedebug) looks up the
-- upvalue `proto` of skynet.register_protocol and replaces the upvalue
-- `raw_dispatch_message` of skynet.dispatch_message.

local core = require "skynet.core"
local modreq = require "skynet.require"

local assert = assert
local error = error
local pairs = pairs
local pcall = pcall
local select = select
local setmetatable = setmetatable
local tostring = tostring
local type = type
local format = string.format
local tpack = table.pack
local tunpack = table.unpack
local tremove = table.remove
local traceback = debug.traceback

-- `coroutine.resume` is the profiling version installed by snlua; going
-- through it keeps skynet.profile accounting right for every task.
local raw_resume = coroutine.resume
local raw_yield = coroutine.yield
local raw_create = coroutine.create
local raw_close = coroutine.close
local coroutine_running = coroutine.running

local skynet = {
	-- message type ids, shared with the native side
	PTYPE_TEXT = 0,
	PTYPE_RESPONSE = 1,
	PTYPE_MULTICAST = 2,
	PTYPE_CLIENT = 3,
	PTYPE_SYSTEM = 4,
	PTYPE_HARBOR = 5,
	PTYPE_SOCKET = 6,
	PTYPE_ERROR = 7,
	PTYPE_QUEUE = 8,	-- only the deprecated skynet.mqueue uses it
	PTYPE_DEBUG = 9,
	PTYPE_LUA = 10,
	PTYPE_SNAX = 11,
	PTYPE_TRACE = 12,	-- announces a trace tag for the next request
}

local PTYPE_RESPONSE = skynet.PTYPE_RESPONSE
local PTYPE_ERROR = skynet.PTYPE_ERROR
local PTYPE_TRACE = skynet.PTYPE_TRACE

skynet.cache = require "skynet.codecache"

---------------------------------------------------------------------------
-- protocol registry: indexed both by name and by numeric id

local proto = {}
skynet._proto = proto

function skynet.register_protocol(class)
	local name, id = class.name, class.id
	assert(proto[name] == nil and proto[id] == nil)
	assert(type(name) == "string" and type(id) == "number" and id >= 0 and id <= 255)
	proto[name] = class
	proto[id] = class
end

---------------------------------------------------------------------------
-- bookkeeping

-- session -> the thread waiting for it, or "BREAK" when the wait was
-- abandoned and the late reply must be swallowed
local session_waiter = {}
-- task thread -> session / source of the request it is serving
local task_session = {}
local task_source = {}
-- task thread -> trace tag string, or false when tracing is forced off
local task_tag = {}
-- response closures created by skynet.response that have not answered yet
local open_responses = {}
-- session of an outstanding call -> address it was sent to
local awaited_from = {}
-- sessions whose call failed; resumed with an error at the next yield point
local failed_sessions = {}
-- sleep/wait token -> session; tokens queued by skynet.wakeup
local sleeper_session = {}
local wake_list = {}
-- coroutines created by skynet.fork, run after the current message
local forks = { head = 1, tail = 0 }
-- source address -> trace tag announced by a PTYPE_TRACE message
local pending_trace = {}

-- The task most recently resumed by the framework; skynet.ret & co act on
-- the request it serves. It stays correct inside skynet.coroutine children
-- because those are resumed with the plain resume.
local running_thread
local init_thread

local function resume_task(co, ...)
	running_thread = co
	return raw_resume(co, ...)
end

---------------------------------------------------------------------------
-- session allocation
--
-- The core hands out sessions from one per-service counter that wraps from
-- 0x7fffffff back to 1. After a wrap a fresh session could collide with one
-- still being waited on (a call that never came back, a very long timer).
-- The core cannot know what Lua still waits for, so after each allocation we
-- peek at the value the counter will produce next and burn it (genid) while
-- it is taken. During the first lap the peeked value is never in use.

local MAX_SESSION = 0x7fffffff

local function reserve_next(session)
	if session then
		local upcoming = session % MAX_SESSION + 1
		while session_waiter[upcoming] ~= nil do
			upcoming = core.genid() % MAX_SESSION + 1
		end
	end
	return session
end

local function send_new_session(addr, typeid, msg, sz)
	return reserve_next(core.send(addr, typeid, nil, msg, sz))
end

local function new_timer(ti)
	return reserve_next(core.intcommand("TIMEOUT", ti))
end

local function new_local_session()
	return reserve_next(core.genid())
end

---------------------------------------------------------------------------
-- task coroutines
--
-- Message handlers, forks and timeouts run in pooled coroutines. A pooled
-- coroutine parks twice per job: once waiting for the function to run and
-- once waiting for that function's arguments, so creating a task and
-- starting it can happen at different moments (fork runs it later).

local idle_tasks = setmetatable({}, { __mode = "kv" })

local function retire_task(co, job)
	local session = task_session[co]
	if session and session ~= 0 then
		local info = debug.getinfo(job, "S")
		skynet.error(format("Maybe forgot response session %s from %s : %s:%d",
			session, skynet.address(task_source[co]), info.source, info.linedefined))
	end
	local tag = task_tag[co]
	if tag then
		core.trace(tag, "end")
	end
	task_tag[co] = nil
	task_session[co] = nil
	task_source[co] = nil
end

local function spawn_task()
	local co
	-- the job is kept in an upvalue so tracebacks read "in upvalue 'f'"
	local f
	co = raw_create(function(job)
		f = job
		while true do
			f(raw_yield())
			retire_task(co, f)
			f = nil
			idle_tasks[#idle_tasks + 1] = co
			-- to whoever resumed us a finished job looks like any other suspension
			f = raw_yield "SUSPEND"
		end
	end)
	return co
end

local function new_task(job)
	local co = tremove(idle_tasks) or spawn_task()
	local current = running_thread
	resume_task(co, job)
	running_thread = current
	return co
end

---------------------------------------------------------------------------
-- what happens after a task gives control back

local on_task_yield

local function noop() end

local function run_failed_call()
	local session = tremove(failed_sessions, 1)
	while session do
		local co = session_waiter[session]
		if type(co) == "thread" then
			session_waiter[session] = nil
			return on_task_yield(co, resume_task(co, false, nil, nil, session))
		end
		session = tremove(failed_sessions, 1)
	end
end

-- Wake the sleepers queued by skynet.wakeup, then the callers whose target
-- died. Each resumed task ends in on_task_yield again, which comes back here:
-- the chain is made of tail calls so it never grows the stack.
local function run_wakeups()
	local token = tremove(wake_list, 1)
	while token ~= nil do
		local session = sleeper_session[token]
		if session then
			local co = session_waiter[session]
			local tag = task_tag[co]
			if tag then
				core.trace(tag, "resume")
			end
			session_waiter[session] = "BREAK"
			return on_task_yield(co, resume_task(co, false, "BREAK", nil, session))
		end
		token = tremove(wake_list, 1)
	end
	return run_failed_call()
end

function on_task_yield(co, ok, command)
	if not ok then
		local session = task_session[co]
		if session then
			if session ~= 0 then
				local tag = task_tag[co]
				if tag then
					core.trace(tag, "error")
				end
				core.send(task_source[co], PTYPE_ERROR, session, "")
			end
			task_session[co] = nil
		end
		task_source[co] = nil
		task_tag[co] = nil
		-- raising below skips run_wakeups; an empty fork makes the dispatcher
		-- yield once more so queued wakeups are not stranded
		skynet.fork(noop)
		local report = traceback(co, tostring(command))
		raw_close(co)
		error(report)
	end
	if command == "SUSPEND" then
		return run_wakeups()
	elseif command == "QUIT" then
		raw_close(co)
	elseif command == "USER" then
		error("Call skynet.coroutine.yield out of skynet.coroutine.resume\n" .. traceback(co))
	elseif command ~= nil then
		-- nil comes from debugger hooks that yield without a command
		error("Unknown command : " .. command .. "\n" .. traceback(co))
	end
end

---------------------------------------------------------------------------
-- timers, sleep, wait, wakeup

local make_timer_task = new_task
local timer_origin	-- thread -> traceback of where the timer was set (trace_timeout)

function skynet.trace_timeout(on)
	if on then
		local origins = timer_origin or {}
		timer_origin = origins
		make_timer_task = function(func, ti)
			local co
			co = new_task(function()
				origins[co] = nil
				func()
			end)
			origins[co] = traceback(format("TIMER %d+%d : ", skynet.now(), ti), 3)
			return co
		end
	else
		timer_origin = nil
		make_timer_task = new_task
	end
end

function skynet.timeout(ti, func)
	local session = assert(new_timer(ti))
	local co = make_timer_task(func, ti)
	assert(session_waiter[session] == nil)
	session_waiter[session] = co
	return co
end

-- park the running task on `session`, wakeable early through `token`
local function park(session, token)
	local tag = task_tag[running_thread]
	if tag then
		core.trace(tag, "sleep", 2)
	end
	session_waiter[session] = running_thread
	assert(sleeper_session[token] == nil, "token duplicative")
	sleeper_session[token] = session
	return raw_yield "SUSPEND"
end

function skynet.sleep(ti, token)
	local session = assert(new_timer(ti))
	token = token or coroutine_running()
	local expired, reason = park(session, token)
	sleeper_session[token] = nil
	if expired then
		return
	end
	if reason == "BREAK" then
		return "BREAK"
	end
	error(reason)
end

function skynet.yield()
	return skynet.sleep(0)
end

function skynet.wait(token)
	local session = new_local_session()
	token = token or coroutine_running()
	park(session, token)
	sleeper_session[token] = nil
	session_waiter[session] = nil
end

function skynet.wakeup(token)
	if sleeper_session[token] then
		wake_list[#wake_list + 1] = token
		return true
	end
end

function skynet.fork(func, ...)
	local co
	local n = select("#", ...)
	if n == 0 then
		co = new_task(func)
	else
		local args = { ... }
		co = new_task(function()
			func(tunpack(args, 1, n))
		end)
	end
	local tail = forks.tail + 1
	forks[tail] = co
	forks.tail = tail
	return co
end

---------------------------------------------------------------------------
-- sending, calling, replying

function skynet.send(addr, typename, ...)
	local p = proto[typename]
	return core.send(addr, p.id, 0, p.pack(...))
end

function skynet.rawsend(addr, typename, msg, sz)
	local p = proto[typename]
	return core.send(addr, p.id, 0, msg, sz)
end

function skynet.redirect(dest, source, typename, ...)
	return core.redirect(dest, source, proto[typename].id, ...)
end

skynet.genid = assert(core.genid)
skynet.pack = assert(core.pack)
skynet.packstring = assert(core.packstring)
skynet.unpack = assert(core.unpack)
skynet.tostring = assert(core.tostring)
skynet.trash = assert(core.trash)

local function await_reply(addr, session)
	awaited_from[session] = addr
	session_waiter[session] = running_thread
	local ok, msg, sz = raw_yield "SUSPEND"
	awaited_from[session] = nil
	if not ok then
		error "call failed"
	end
	return msg, sz
end

function skynet.call(addr, typename, ...)
	local tag = task_tag[running_thread]
	if tag then
		core.trace(tag, "call", 2)
		core.send(addr, PTYPE_TRACE, 0, tag)
	end
	local p = proto[typename]
	local session = send_new_session(addr, p.id, p.pack(...))
	if session == nil then
		error("call to invalid address " .. skynet.address(addr))
	end
	return p.unpack(await_reply(addr, session))
end

function skynet.rawcall(addr, typename, msg, sz)
	local tag = task_tag[running_thread]
	if tag then
		core.trace(tag, "call", 2)
		core.send(addr, PTYPE_TRACE, 0, tag)
	end
	local p = proto[typename]
	local session = assert(send_new_session(addr, p.id, msg, sz), "call to invalid address")
	return await_reply(addr, session)
end

function skynet.tracecall(tag, addr, typename, msg, sz)
	core.trace(tag, "tracecall begin")
	core.send(addr, PTYPE_TRACE, 0, tag)
	local p = proto[typename]
	local session = assert(send_new_session(addr, p.id, msg, sz), "call to invalid address")
	local rmsg, rsz = await_reply(addr, session)
	core.trace(tag, "tracecall end")
	return rmsg, rsz
end

-- send a reply; an oversized one (send returns false) degrades to an error
-- so the caller is not left waiting forever
local function deliver(addr, session, msg, sz)
	local sent = core.send(addr, PTYPE_RESPONSE, session, msg, sz)
	if sent == false then
		core.send(addr, PTYPE_ERROR, session, "")
	end
	return sent
end

function skynet.ret(msg, sz)
	msg = msg or ""
	local co = running_thread
	local tag = task_tag[co]
	if tag then
		core.trace(tag, "response")
	end
	local session = task_session[co]
	if session == nil then
		error "No session"
	end
	task_session[co] = nil
	if session == 0 then
		-- the request was a send: nobody waits, just release the payload
		if sz ~= nil then
			core.trash(msg, sz)
		end
		return false
	end
	return deliver(task_source[co], session, msg, sz) and true or false
end

function skynet.retpack(...)
	return skynet.ret(skynet.pack(...))
end

function skynet.context()
	return task_session[running_thread], task_source[running_thread]
end

function skynet.ignoreret()
	-- the caller takes over the session for its own purpose
	task_session[running_thread] = nil
end

function skynet.response(pack)
	pack = pack or skynet.pack
	local co = running_thread
	local session = assert(task_session[co], "no session")
	task_session[co] = nil
	local addr = task_source[co]
	if session == 0 then
		return noop
	end
	local function reply(ok, ...)
		if ok == "TEST" then
			return open_responses[reply] ~= nil
		end
		if not pack then
			error "Can't response more than once"
		end
		local delivered = false
		if open_responses[reply] then
			local sent
			if ok then
				sent = deliver(addr, session, pack(...))
			else
				sent = core.send(addr, PTYPE_ERROR, session, "")
			end
			open_responses[reply] = nil
			delivered = sent ~= nil
		end
		pack = nil
		return delivered
	end
	open_responses[reply] = addr
	return reply
end

---------------------------------------------------------------------------
-- request objects: send several calls at once and consume the replies in
-- arrival order, optionally bounded by a timeout (skynet.request / select)

local request_meta = {}
request_meta.__index = request_meta

function request_meta:add(req)
	assert(type(req) == "table" and not self._collector)
	self[#self + 1] = req
	return self
end

request_meta.__call = request_meta.add

-- The collector is a private coroutine registered as the waiter of every
-- session of the request; it files each reply and pokes the iterator.
local function collect_replies(self)
	while true do
		local ok, msg, sz, session = raw_yield "SUSPEND"
		if session == self._timer then
			self._timer = nil
			self.timeout = true
		else
			awaited_from[session] = nil
			local req = self._by_session[session]
			if ok then
				self._replies[session] = tpack(proto[req[2]].unpack(msg, sz))
			else
				self._replies[session] = false
			end
		end
		skynet.wakeup(self)
	end
end

local function issue_requests(self, collector)
	local by_session = {}
	local unreachable
	local outstanding = 0
	for i = 1, #self do
		local req = self[i]
		local addr = req[1]
		local p = proto[req[2]]
		assert(p.unpack)
		local tag = task_tag[running_thread]
		if tag then
			core.trace(tag, "call", 4)
			core.send(addr, PTYPE_TRACE, 0, tag)
		end
		local session = send_new_session(addr, p.id, p.pack(tunpack(req, 3, req.n)))
		if session then
			by_session[session] = req
			awaited_from[session] = addr
			session_waiter[session] = collector
			outstanding = outstanding + 1
		else
			unreachable = unreachable or {}
			unreachable[#unreachable + 1] = req
		end
	end
	self._by_session = by_session
	self._outstanding = outstanding
	self._unreachable = unreachable
end

local function next_reply(self)
	local unreachable = self._unreachable
	if unreachable then
		-- requests to invalid addresses come first, without a response
		local req = tremove(unreachable)
		if req then
			return req
		end
		self._unreachable = nil
	end
	local replies = self._replies
	local session, resp = next(replies)
	if session == nil then
		if self._outstanding == 0 or self.timeout then
			return
		end
		skynet.wait(self)
		if self.timeout then
			return
		end
		session, resp = next(replies)
	end
	self._outstanding = self._outstanding - 1
	local req = self._by_session[session]
	replies[session] = nil
	self._by_session[session] = nil
	return req, resp
end

function request_meta:select(timeout)
	assert(self._collector == nil)
	local collector = raw_create(collect_replies)
	self._collector = collector
	issue_requests(self, collector)
	self._replies = {}
	if timeout then
		local session = new_timer(timeout)
		self._timer = session
		session_waiter[session] = collector
	end
	local current = running_thread
	resume_task(collector, self)
	running_thread = current
	-- the 4th value makes a generic for close the request when it ends
	return function()
		return next_reply(self)
	end, nil, nil, self
end

function request_meta:close()
	if (self._outstanding or 0) > 0 then
		local replies = self._replies
		for session in pairs(self._by_session) do
			if replies[session] == nil then
				session_waiter[session] = "BREAK"
				awaited_from[session] = nil
			end
		end
		self._outstanding = 0
	end
	if self._timer then
		session_waiter[self._timer] = "BREAK"
		self._timer = nil
	end
end

request_meta.__close = request_meta.close

function skynet.request(req)
	local r = setmetatable({}, request_meta)
	if req then
		return r(req)
	end
	return r
end

---------------------------------------------------------------------------
-- dead services and failed calls

-- PTYPE_ERROR handler. Session 0 means "that service is gone": every call
-- waiting on it fails and pending skynet.response closures to it are
-- dropped. Otherwise only the call with that session fails.
local function on_error_message(session, source)
	skynet.ignoreret()
	if session == 0 then
		for reply, addr in pairs(open_responses) do
			if addr == source then
				open_responses[reply] = nil
			end
		end
		for s, addr in pairs(awaited_from) do
			if addr == source then
				failed_sessions[#failed_sessions + 1] = s
			end
		end
	elseif awaited_from[session] then
		failed_sessions[#failed_sessions + 1] = session
	elseif session_waiter[session] == "BREAK" then
		-- an abandoned call failed: nothing else will arrive for it
		session_waiter[session] = nil
	end
end

function skynet.term(service)
	return on_error_message(0, service)
end

---------------------------------------------------------------------------
-- message dispatch

local function unknown_request(session, address, msg, sz, prototype)
	skynet.error(format("Unknown request (%s): %s", prototype, core.tostring(msg, sz)))
	error(format("Unknown session : %d from %x", session, address))
end

function skynet.dispatch_unknown_request(handler)
	local previous = unknown_request
	unknown_request = handler
	return previous
end

local function unknown_response(session, address, msg, sz)
	skynet.error(format("Response message : %s", core.tostring(msg, sz)))
	error(format("Unknown session : %d from %x", session, address))
end

function skynet.dispatch_unknown_response(handler)
	local previous = unknown_response
	unknown_response = handler
	return previous
end

function skynet.dispatch(typename, func)
	local p = proto[typename]
	if func then
		local previous = p.dispatch
		p.dispatch = func
		return previous
	end
	return p and p.dispatch
end

local function deliver_response(session, source, msg, sz)
	local co = session_waiter[session]
	if co == "BREAK" then
		session_waiter[session] = nil
	elseif co == nil then
		unknown_response(session, source, msg, sz)
	else
		local tag = task_tag[co]
		if tag then
			core.trace(tag, "resume")
		end
		session_waiter[session] = nil
		return on_task_yield(co, resume_task(co, true, msg, sz, session))
	end
end

-- decide the trace tag of a new request task
local function tag_request(co, p, source)
	local mode = p.trace
	if mode == false then
		pending_trace[source] = nil
		task_tag[co] = false
		return
	end
	local tag = pending_trace[source]
	if tag then
		pending_trace[source] = nil
		core.trace(tag, "request")
		task_tag[co] = tag
	elseif mode then
		running_thread = co
		skynet.trace()
	end
end

local function raw_dispatch_message(prototype, msg, sz, session, source)
	if prototype == PTYPE_RESPONSE then
		return deliver_response(session, source, msg, sz)
	end
	local p = proto[prototype]
	local handler = p and p.dispatch
	if handler == nil then
		if p == nil and prototype == PTYPE_TRACE then
			pending_trace[source] = core.tostring(msg, sz)
			return
		end
		if p then
			pending_trace[source] = nil
		end
		if session ~= 0 then
			core.send(source, PTYPE_ERROR, session, "")
		else
			unknown_request(session, source, msg, sz, p and p.name or prototype)
		end
		return
	end
	local co = new_task(handler)
	task_session[co] = session
	task_source[co] = source
	tag_request(co, p, source)
	return on_task_yield(co, resume_task(co, session, source, p.unpack(msg, sz)))
end

-- Entry point for every message (installed by skynet.start). Forks queued
-- while handling it run afterwards; their errors are collected so one
-- failing fork does not starve the others, and reported together.
function skynet.dispatch_message(...)
	local ok, err = pcall(raw_dispatch_message, ...)
	while forks.head <= forks.tail do
		local head = forks.head
		local co = forks[head]
		forks[head] = nil
		forks.head = head + 1
		local fork_ok, fork_err = pcall(on_task_yield, co, resume_task(co))
		if not fork_ok then
			if ok then
				ok, err = false, tostring(fork_err)
			else
				err = tostring(err) .. "\n" .. tostring(fork_err)
			end
		end
	end
	forks.head, forks.tail = 1, 0
	assert(ok, tostring(err))
end

---------------------------------------------------------------------------
-- service lifecycle

function skynet.newservice(name, ...)
	return skynet.call(".launcher", "lua", "LAUNCH", "snlua", name, ...)
end

-- Asks service_mgr; a name of `true` selects the node-global form of the command.
local function ask_service_mgr(local_cmd, global_cmd, name, ...)
	if name == true then
		return assert(skynet.call(".service", "lua", global_cmd, ...))
	end
	return assert(skynet.call(".service", "lua", local_cmd, name, ...))
end

function skynet.uniqueservice(...)
	return ask_service_mgr("LAUNCH", "GLAUNCH", ...)
end

function skynet.queryservice(...)
	return ask_service_mgr("QUERY", "GQUERY", ...)
end

skynet.init = modreq.init
skynet.pcall = pcall	-- kept for old code; plain pcall works across yields

function skynet.init_service(start)
	local ok, err = xpcall(function()
		modreq.init_all()
		start()
	end, traceback)
	if ok then
		skynet.send(".launcher", "lua", "LAUNCHOK")
	else
		skynet.error("init service failed: " .. tostring(err))
		skynet.send(".launcher", "lua", "ERROR")
		skynet.exit()
	end
end

function skynet.start(start_func)
	core.callback(skynet.dispatch_message)
	init_thread = skynet.timeout(0, function()
		skynet.init_service(start_func)
		init_thread = nil
	end)
end

function skynet.exit()
	-- nothing queued by fork may run once we are leaving
	forks = { head = 1, tail = 0 }
	skynet.send(".launcher", "lua", "REMOVE", skynet.self(), false)
	-- fail the requests we were still serving
	for co, session in pairs(task_session) do
		local addr = task_source[co]
		if session ~= 0 and addr then
			core.send(addr, PTYPE_ERROR, session, "")
		end
	end
	-- unwind suspended tasks so their to-be-closed variables are closed
	for _, co in pairs(session_waiter) do
		if type(co) == "thread" and co ~= running_thread then
			raw_close(co)
		end
	end
	for reply in pairs(open_responses) do
		reply(false)
	end
	-- tell every service we are waiting on that we are gone
	local waited = {}
	for _, addr in pairs(awaited_from) do
		waited[addr] = true
	end
	for addr in pairs(waited) do
		core.send(addr, PTYPE_ERROR, 0, "")
	end
	-- from now on bounce every request
	core.callback(function(_, _, _, session, source)
		if session ~= 0 and source ~= 0 then
			core.send(source, PTYPE_ERROR, session, "")
		end
	end)
	core.command("EXIT")
	raw_yield "QUIT"
end

function skynet.memlimit(bytes)
	-- snlua reads this right after the main chunk, so it only works there
	debug.getregistry().memlimit = bytes
	skynet.memlimit = nil
end

---------------------------------------------------------------------------
-- identity, names, environment, time

local self_handle

function skynet.self()
	if self_handle == nil then
		self_handle = core.addresscommand "REG"
	end
	return self_handle
end

function skynet.localname(name)
	return core.addresscommand("QUERY", name)
end

function skynet.address(addr)
	if type(addr) == "number" then
		return format(":%08x", addr)
	end
	return tostring(addr)
end

function skynet.harbor(addr)
	return core.harbor(addr)
end

function skynet.getenv(key)
	return (core.command("GETENV", key))
end

function skynet.setenv(key, value)
	assert(core.command("GETENV", key) == nil, "Can't setenv exist key : " .. key)
	core.command("SETENV", key .. " " .. value)
end

skynet.now = core.now
skynet.hpc = core.hpc

local start_seconds

function skynet.starttime()
	if not start_seconds then
		start_seconds = core.intcommand "STARTTIME"
	end
	return start_seconds
end

function skynet.time()
	return skynet.now() / 100 + skynet.starttime()
end

skynet.error = core.error
skynet.tracelog = core.trace

---------------------------------------------------------------------------
-- tracing

local trace_seq = 0

function skynet.trace(info)
	local co = running_thread
	skynet.error("TRACE", task_tag[co])
	if task_tag[co] == false then
		return
	end
	trace_seq = trace_seq + 1
	local tag = format(":%08x-%d", skynet.self(), trace_seq)
	task_tag[co] = tag
	core.trace(tag, info and ("trace " .. info) or "trace")
end

function skynet.tracetag()
	return task_tag[running_thread]
end

-- flag true: trace every request of that protocol; false: never trace it;
-- nil: only when skynet.trace() is called
function skynet.traceproto(prototype, flag)
	local p = assert(proto[prototype])
	p.trace = flag
end

---------------------------------------------------------------------------
-- introspection

function skynet.endless()
	return core.intcommand("STAT", "endless") == 1
end

function skynet.mqlen()
	return core.intcommand("STAT", "mqlen")
end

function skynet.stat(what)
	return core.intcommand("STAT", what)
end

local function describe_waiter(co)
	if co == "BREAK" then
		return co
	end
	if timer_origin and timer_origin[co] then
		return timer_origin[co]
	end
	return traceback(co)
end

-- task()          number of suspended tasks
-- task "init"     traceback of the start function if still running
-- task(table)     fill it with "<thread> session: <n>" -> traceback
-- task(session)   traceback of the task waiting on that session
-- task(thread)    session that thread waits on
function skynet.task(query)
	if query == nil then
		local count = 0
		for _, co in pairs(session_waiter) do
			if co ~= "BREAK" then
				count = count + 1
			end
		end
		return count
	end
	if query == "init" then
		if init_thread then
			return traceback(init_thread)
		end
		return
	end
	local kind = type(query)
	if kind == "table" then
		for session, co in pairs(session_waiter) do
			query[format("%s session: %d", tostring(co), session)] = describe_waiter(co)
		end
	elseif kind == "number" then
		local co = session_waiter[query]
		if co then
			return describe_waiter(co)
		end
		return "No session"
	elseif kind == "thread" then
		for session, co in pairs(session_waiter) do
			if co == query then
				return session
			end
		end
	end
end

-- group suspended tasks by identical stack: "<count>\tsessions:[...]\n" -> stack
function skynet.uniqtask()
	local groups = {}
	for session, co in pairs(session_waiter) do
		local stack = describe_waiter(co)
		local group = groups[stack]
		if group == nil then
			group = { count = 0, sessions = {} }
			groups[stack] = group
		end
		group.count = group.count + 1
		if group.count < 10 then
			group.sessions[#group.sessions + 1] = session
		end
	end
	local result = {}
	for stack, group in pairs(groups) do
		local list = table.concat(group.sessions, ",")
		if group.count > 10 then
			list = list .. "..."
		end
		result[format("%d\tsessions:[%s]\n", group.count, list)] = stack
	end
	return result
end

local function drop_fork(thread)
	for i = forks.head, forks.tail do
		if forks[i] == thread then
			table.move(forks, i + 1, forks.tail, i)
			forks[forks.tail] = nil
			forks.tail = forks.tail - 1
			return true
		end
	end
end

-- Kill a suspended task, given the thread or a substring of its tostring().
-- Returns the killed thread, or nothing when not found.
function skynet.killthread(thread)
	local session
	if type(thread) == "string" then
		for s, co in pairs(session_waiter) do
			if tostring(co):find(thread, 1, true) then
				session = s
				break
			end
		end
	else
		if drop_fork(thread) then
			return thread
		end
		for s, co in pairs(session_waiter) do
			if co == thread then
				session = s
				break
			end
		end
	end
	local co = session and session_waiter[session]
	if type(co) ~= "thread" then
		return
	end
	local addr = task_source[co]
	if addr then
		local request = task_session[co]
		if request and request > 0 then
			core.send(addr, PTYPE_ERROR, request, "")
		end
		task_session[co] = nil
		task_source[co] = nil
		task_tag[co] = nil
	end
	if awaited_from[session] then
		-- a reply is still coming: swallow it
		session_waiter[session] = "BREAK"
		awaited_from[session] = nil
	else
		session_waiter[session] = nil
	end
	for token, s in pairs(sleeper_session) do
		if s == session then
			sleeper_session[token] = nil
			break
		end
	end
	raw_close(co)
	return co
end

---------------------------------------------------------------------------
-- built-in protocols

skynet.register_protocol {
	name = "lua",
	id = skynet.PTYPE_LUA,
	pack = skynet.pack,
	unpack = skynet.unpack,
}

skynet.register_protocol {
	name = "response",
	id = PTYPE_RESPONSE,
}

skynet.register_protocol {
	name = "error",
	id = PTYPE_ERROR,
	unpack = function(...) return ... end,
	dispatch = on_error_message,
}

-- the "debug" protocol (MEM, GC, STAT, TASK, RUN, ...) lives in skynet.debug;
-- it needs the dispatcher and the resume/suspend pair for the remote debugger
require("skynet.debug").init(skynet, {
	dispatch = skynet.dispatch_message,
	suspend = on_task_yield,
	resume = resume_task,
})

return skynet
