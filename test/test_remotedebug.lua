-- A remote-debug session driven over the debug console's TCP port, as an
-- operator types it: `debug :target` attaches (debug_agent, skynet.remotedebug),
-- a Lua expression runs in the target, watch("lua") sets a breakpoint on the
-- next request, the handler stops at its first line, `n` and `s` step over and
-- into a call, locals print at each stop, a step into skynet itself steps over
-- it, `c` lets the request finish, and `cont` detaches. The target answers requests all along (stopped or not), a
-- second attach while one is on fails, and detaching while a handler is
-- stopped lets it finish. The console port is given by the Rust test.
local skynet = require "skynet"
local socket = require "skynet.socket"
local tester = require "tester"
local eq, ok = tester.eq, tester.ok

local role = ...

if role == "target" then
	local function double(x)
		local y = x * 2	-- @D1
		return y	-- @D2
	end
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, a, b)
			local sum = a + b	-- @L1
			local d = double(sum)	-- @L2
			skynet.retpack(d, cmd)	-- @L3
		end)	-- @E
	end)
	return
end

-- line numbers of the @ markers in this file
local function markers()
	local path = debug.getinfo(1, "S").source:sub(2)
	local lines = {}
	local n = 0
	for line in io.lines(path) do
		n = n + 1
		local mark = line:match "%-%- @(%w+)$"
		if mark then
			lines[mark] = n
		end
	end
	return lines
end

-- The console's output as a stream: expect(pattern) reads until the pattern
-- matches, drops everything up to the match and returns its captures.
local function console(port)
	local fd = assert(socket.open("127.0.0.1", port))
	local buffer = ""
	local c = {}
	function c.send(line)
		socket.write(fd, line .. "\n")
	end
	function c.expect(pattern, what)
		while true do
			local first, last = buffer:find(pattern)
			if first then
				local captures = table.pack(buffer:match(pattern))
				buffer = buffer:sub(last + 1)
				return table.unpack(captures, 1, captures.n)
			end
			local data = socket.read(fd)
			ok(data, string.format("console closed waiting for %s (got %q)", what or pattern, buffer))
			buffer = buffer .. data
		end
	end
	function c.close()
		socket.close(fd)
	end
	return c
end

local PORT = tonumber(skynet.getenv "remotedebug_port")

tester.run("test_remotedebug", function()
	local at = markers()
	local target = skynet.newservice(SERVICE_NAME, "target")
	local prompt = string.format(":%08x>", target)
	local stop = function(mark)
		return "test_remotedebug%.lua%(" .. at[mark] .. "%)>"
	end

	local admin = skynet.newservice("debug_console", "127.0.0.1", PORT)
	local con = console(PORT)
	con.expect("Welcome to skynet console\n")

	con.send(string.format("debug %08x", target))
	con.expect(prompt, "the attached prompt")
	tester.wait_log(string.format("[:%08x] Enter debug mode", target))

	-- Lua runs in the target
	con.send "1 + 2"
	-- print's format, as upstream's: the values, each followed by a tab
	eq(con.expect("^(.-)\n"), "3\t", "an expression's value")
	con.expect(prompt)
	con.send "print(skynet == nil, 'x')"
	eq(con.expect("^(.-)\n"), "true\tx\t", "print goes to the console")
	con.expect(prompt)
	con.send "local n = 'unfinished"
	ok(con.expect("^(.-)\n"):find "unfinished string", "a syntax error is printed")
	con.expect(prompt)

	-- a request while attached (no breakpoint) is served
	eq(skynet.call(target, "lua", "plain", 1, 2), 6, "served while attached")

	-- a second debugger on the same service is refused
	local second = console(PORT)
	second.expect("Welcome to skynet console\n")
	second.send(string.format("debug %08x", target))
	-- as upstream's, the console's relay of debugger lines holds the command
	-- until one more line comes after the attach failed
	local refused = false
	skynet.fork(function()
		while not refused do
			skynet.sleep(10)
			second.send ""
		end
	end)
	ok(second.expect("^(.-)<CMD Error>\n"):find "Debugger attach failed", "second attach")
	refused = true
	second.close()

	-- breakpoint on the next "lua" request
	con.send 'watch("lua")'
	con.expect(prompt)
	local answer
	local done = tester.latch(1)
	skynet.fork(function()
		answer = table.pack(skynet.call(target, "lua", "work", 3, 4))
		done.done()
	end)
	con.expect(stop "L1", "the breakpoint at the handler's first line")
	con.send "cmd"
	eq(con.expect("^(.-)\n"), "work\t", "a local at the breakpoint")
	con.expect(stop "L1")
	-- the stopped service still serves other requests
	eq(skynet.call(target, "debug", "PING"), nil)

	con.send "n"
	con.expect(stop "L2", "next")
	con.send "sum"
	eq(con.expect("^(.-)\n"), "7\t")
	con.expect(stop "L2")

	con.send "s"
	con.expect(stop "D1", "step into double")
	con.send "x"
	eq(con.expect("^(.-)\n"), "7\t", "the callee's argument")
	con.expect(stop "D1")
	con.send "n"
	con.expect(stop "D2")
	con.send "y"
	eq(con.expect("^(.-)\n"), "14\t")
	con.expect(stop "D2")
	con.send "n"
	con.expect(stop "L3", "back in the handler")
	con.send "d, a, b"
	eq(con.expect("^(.-)\n"), "14\t3\t4\t", "several locals")
	con.expect(stop "L3")
	eq(answer, nil, "the request is still stopped")

	-- stepping into skynet.retpack steps over the framework, to the handler's end
	con.send "s"
	con.expect(stop "E", "the handler's last line")
	con.send "s"
	con.expect(prompt, "the traced request is over")
	done.wait()
	eq(answer[1], 14, "the stopped request finished")
	eq(answer[2], "work")

	-- c: the handler runs on untraced
	con.send 'watch("lua")'
	con.expect(prompt)
	local continued
	local done_c = tester.latch(1)
	skynet.fork(function()
		continued = skynet.call(target, "lua", "continue", 1, 1)
		done_c.done()
	end)
	con.expect(stop "L1")
	con.send "c"
	con.expect(prompt, "continue")
	done_c.wait()
	eq(continued, 4, "the continued request finished")

	-- detach while a handler is stopped: it runs on
	con.send 'watch("lua")'
	con.expect(prompt)
	local late
	local done2 = tester.latch(1)
	skynet.fork(function()
		late = skynet.call(target, "lua", "again", 10, 20)
		done2.done()
	end)
	con.expect(stop "L1")
	con.send "cont"
	con.expect("<CMD OK>\n", "the debug command ends")
	done2.wait()
	eq(late, 60, "the stopped request finished after detach")
	tester.wait_log(string.format("[:%08x] Leave debug mode", target))
	ok(tester.find_log(string.format("Attach to :%08x", target)), "debug_agent logged the attach")

	-- the target and the console live on
	eq(skynet.call(target, "lua", "after", 5, 5), 20, "served after detach")
	con.send(string.format("ping :%08x", target))
	con.expect("<CMD OK>\n", "the console takes commands again")
	con.close()
	skynet.kill(admin)
end)
