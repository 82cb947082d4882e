-- skynet.call / skynet.ret / skynet.retpack / skynet.ignoreret, sends keeping their order
-- relative to calls, a handler error turning into "call failed", and calls that re-enter
-- the caller while it is waiting.
local skynet = require "skynet"
local c = require "skynet.core"
local tester = require "tester"

local mode = ...

if mode == "slave" then
	local count = 0
	local CMD = {}

	function CMD.echo(...)
		skynet.ret(skynet.pack(...))
	end

	function CMD.retpack(...)
		skynet.retpack(...)
	end

	function CMD.nothing()
		skynet.ret()
	end

	function CMD.count(n)
		-- reached through skynet.send: there is no one to answer
		count = count + n
	end

	function CMD.get_count()
		skynet.retpack(count)
	end

	function CMD.raise(msg)
		error(msg)
	end

	function CMD.reenter(caller, x)
		-- call back the service that is itself waiting for this answer
		local y = skynet.call(caller, "lua", "double", x)
		skynet.retpack(y + 1)
	end

	function CMD.manual(tag)
		-- answer later, by hand, after telling lualib not to
		local session, source = skynet.context()
		skynet.ignoreret()
		skynet.fork(function()
			skynet.sleep(1)
			c.send(source, skynet.PTYPE_RESPONSE, session, skynet.pack("manual", tag))
		end)
	end

	function CMD.ret_twice()
		skynet.retpack(1)
		-- the session is consumed by the first answer
		local ok, err = pcall(skynet.ret, skynet.pack(2))
		CMD.last_twice = { ok, tostring(err) }
	end

	function CMD.get_twice()
		skynet.retpack(table.unpack(CMD.last_twice))
	end

	tester.serve(CMD)
	return
end

local eq, ok, raises = tester.eq, tester.ok, tester.raises

tester.run("test_call", function()
	skynet.dispatch("lua", function(_, _, cmd, x)
		assert(cmd == "double")
		skynet.retpack(x * 2)
	end)

	local slave = skynet.newservice(SERVICE_NAME, "slave")
	ok(math.type(slave) == "integer" and slave > 8, "newservice returns a fresh handle")

	-- values, nils in the middle and at the end survive a round trip
	local n, a, b, cc, d = (function(...) return select("#", ...), ... end)(
		skynet.call(slave, "lua", "echo", 1, nil, "x", nil))
	eq(n, 4, "number of echoed values")
	eq(a, 1, "echo 1")
	eq(b, nil, "echo 2")
	eq(cc, "x", "echo 3")
	eq(d, nil, "echo 4")

	local r1, r2 = skynet.call(slave, "lua", "retpack", "hello", 2.5)
	eq(r1, "hello", "retpack 1")
	eq(r2, 2.5, "retpack 2")

	eq(select("#", skynet.call(slave, "lua", "nothing")), 0, "an empty answer has no values")

	-- sends from one source are handled in order, before a later call
	for i = 1, 100 do
		skynet.send(slave, "lua", "count", i)
	end
	eq(skynet.call(slave, "lua", "get_count"), 5050, "all sends handled before the call")

	-- a big payload
	local big = string.rep("0123456789abcdef", 8192)
	eq(skynet.call(slave, "lua", "echo", big), big, "128 KiB round trip")

	-- an error in the handler fails the call; the service keeps serving
	raises("call failed", skynet.call, slave, "lua", "raise", "boom")
	eq(skynet.call(slave, "lua", "echo", "still alive"), "still alive", "serving after an error")

	-- the callee calls back into us while we wait for it
	eq(skynet.call(slave, "lua", "reenter", skynet.self(), 20), 41, "re-entrant call")

	-- a call to oneself
	eq(skynet.call(skynet.self(), "lua", "double", 4), 8, "call to self")

	-- ignoreret + an answer sent by hand with the saved session
	local m, tag = skynet.call(slave, "lua", "manual", "t1")
	eq(m, "manual", "manual answer")
	eq(tag, "t1", "manual answer tag")

	-- a second skynet.ret in the same request has no session any more
	eq(skynet.call(slave, "lua", "ret_twice"), 1, "first ret wins")
	local twice_ok, twice_err = skynet.call(slave, "lua", "get_twice")
	eq(twice_ok, false, "second skynet.ret fails")
	ok(twice_err:find("No session", 1, true), "second skynet.ret error: " .. twice_err)

	-- several concurrent calls from forks all get their own answers
	local answers = tester.concurrent(20, function(i)
		return skynet.call(slave, "lua", "echo", i * i)
	end)
	for i = 1, 20 do
		eq(answers[i][2], i * i, "concurrent answer " .. i)
	end

	tester.flush_log()
	eq(tester.find_log("Maybe forgot response"), nil, "no request was left unanswered")
end)
