-- debug_console: a line-oriented administration console on a TCP port.
--
--   skynet.newservice("debug_console", [ip,] port)     -- ip defaults to 127.0.0.1
--
-- This service owns the console protocol and its command set. Each connection
-- gets "Welcome to skynet console"; each command line is answered with its output
-- and then "<CMD OK>" or, after the error text, "<CMD Error>". Tables are listed
-- one key per line, keys sorted, "key<TAB>value", a table value rendered as
-- "k:v" pairs separated by tabs. Scripts parse these texts, so they match
-- upstream skynet exactly.
--
-- A connection whose first line is an HTTP request line ("GET /cmd/arg" or a
-- POST whose body is the command line) runs that one command, writes the plain
-- console output and closes (handy with curl).

local skynet = require "skynet"
local core = require "skynet.core"
local socket = require "skynet.socket"
local snax = require "skynet.snax"
local memory = require "skynet.memory"
local codecache = require "skynet.codecache"

local args = table.pack(...)
assert(args.n <= 2, "debug_console: usage: debug_console [ip] port")
local listen_ip = args.n == 2 and args[1] or "127.0.0.1"
local listen_port = tonumber(args[args.n])

-- Default time limit (centiseconds) for the commands that poll every service.
local DEFAULT_TIMEOUT = 300

-- A request header longer than this makes us give up on the HTTP form.
local HTTP_HEADER_LIMIT = 8192

-- Commands taking their words as arguments.
local COMMAND = {}
-- Commands that need the raw line and the connection: they get
-- { <whole command line>, <word 2>, <word 3>, ..., fd = <socket id> }.
local COMMANDX = {}

---------------------------------------------------------------------------
-- output formatting

local function sorted_keys(t)
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	-- keys may mix numbers and strings: order them by their text
	table.sort(keys, function(a, b)
		return tostring(a) < tostring(b)
	end)
	return keys
end

local function inline_table(t)
	local cells = {}
	for i, k in ipairs(sorted_keys(t)) do
		cells[i] = string.format("%s:%s", k, tostring(t[k]))
	end
	return table.concat(cells, "\t")
end

local function print_result(print, result)
	for _, k in ipairs(sorted_keys(result)) do
		local v = result[k]
		if type(v) == "table" then
			print(k, inline_table(v))
		else
			print(k, tostring(v))
		end
	end
end

---------------------------------------------------------------------------
-- running one command line

local function run_command(line, print, fd)
	local words = {}
	for w in line:gmatch "%S+" do
		words[#words + 1] = w
	end
	local name = words[1]
	local ok, result
	local plain = COMMAND[name]
	if plain then
		ok, result = pcall(plain, table.unpack(words, 2))
	else
		local raw = COMMANDX[name]
		if raw then
			words[1] = line
			words.fd = fd
			ok, result = pcall(raw, words)
		else
			print "Invalid command, type help for command list"
		end
	end
	if ok then
		if type(result) == "string" then
			print(result)
		elseif result then
			print_result(print, result)
		end
		print "<CMD OK>"
	else
		-- for an unknown command `result` is nil and this is an empty line, as
		-- upstream prints it (scripts may count on the line)
		print(result)
		print "<CMD Error>"
	end
end

-- Reads an HTTP request whose request line was `first`; returns the console
-- command it carries (the path with "/" turned into spaces, or the POST body).
local function http_command(fd, first)
	local method, target = first:match "^(%u+)%s+(%S+)"
	local length
	local header_bytes = 0
	while true do
		local h = socket.readline(fd, "\n")
		if not h then
			error "connection closed inside the HTTP header"
		end
		header_bytes = header_bytes + #h
		if header_bytes > HTTP_HEADER_LIMIT then
			error "HTTP header too large"
		end
		h = h:gsub("\r$", "")
		if h == "" then
			break
		end
		local key, value = h:match "^([^:]+):%s*(.-)%s*$"
		if key and key:lower() == "content-length" then
			length = tonumber(value)
		end
	end
	if method == "POST" then
		if not length or length <= 0 then
			return ""
		end
		return assert(socket.read(fd, length), "connection closed inside the HTTP body")
	end
	-- "/stat/100" runs "stat 100"
	return ((target or "/"):sub(2):gsub("/", " "))
end

local function session(fd, print, peer)
	print "Welcome to skynet console"
	skynet.error(peer, "connected")
	local ok, err = pcall(function()
		while true do
			local line = socket.readline(fd, "\n")
			if not line then
				return
			end
			line = line:gsub("\r$", "")
			if line:sub(1, 4) == "GET " or line:sub(1, 5) == "POST " then
				run_command(http_command(fd, line), print, fd)
				return
			end
			if line ~= "" then
				run_command(line, print, fd)
			end
		end
	end)
	if not ok then
		skynet.error(fd, err)
	end
	skynet.error(peer, "disconnect")
	socket.close(fd)
end

skynet.start(function()
	local lfd, ip, port = socket.listen(listen_ip, listen_port)
	skynet.error("Start debug console at " .. ip .. ":" .. port)
	socket.start(lfd, function(fd, peer)
		-- Like upstream's console print, the values after the first nil are
		-- not shown (so a nil alone makes an empty line).
		local function print(...)
			local cells = {}
			for i = 1, select("#", ...) do
				local v = select(i, ...)
				if v == nil then
					break
				end
				cells[i] = tostring(v)
			end
			socket.write(fd, table.concat(cells, "\t") .. "\n")
		end
		socket.start(fd)
		skynet.fork(session, fd, print, peer)
	end)
end)

---------------------------------------------------------------------------
-- helpers for the commands

-- Accepts ".name", ":hex" or bare hex (taken on this node's harbor).
local function to_address(text)
	assert(text, "Need an address")
	local first = text:sub(1, 1)
	if first == "." then
		return assert(skynet.localname(text), "Not a valid name")
	end
	if first == ":" then
		return assert(tonumber(text:sub(2), 16), "Need an address")
	end
	local handle = assert(tonumber("0x" .. text), "Need an address")
	return handle | (skynet.harbor(skynet.self()) << 24)
end

-- Time limit argument of stat/mem/gc: absent means the default, <= 0 none.
local function time_limit(text)
	if text == nil then
		return DEFAULT_TIMEOUT
	end
	local t = assert(tonumber(text), "Invalid timeout")
	if t <= 0 then
		return nil
	end
	return t
end

local function on_off(word)
	return word == "on" or word == "true"
end

local function debug_call(address, cmd, ...)
	return skynet.call(to_address(address), "debug", cmd, ...)
end

---------------------------------------------------------------------------
-- commands

function COMMAND.help()
	return {
		help = "This help message",
		list = "List all the service",
		stat = "Dump all stats",
		info = "info address : get service infomation",
		exit = "exit address : kill a lua service",
		kill = "kill address : kill service",
		mem = "mem : show memory status",
		gc = "gc : force every lua service do garbage collect",
		start = "lanuch a new lua service",
		snax = "lanuch a new snax service",
		clearcache = "clear lua code cache",
		service = "List unique service",
		task = "task address : show service task detail",
		uniqtask = "task address : show service unique task detail",
		inject = "inject address luascript.lua",
		logon = "logon address",
		logoff = "logoff address",
		log = "launch a new lua service with log",
		debug = "debug address : debug a lua service",
		signal = "signal address sig",
		cmem = "Show C memory info",
		jmem = "Show jemalloc mem stats",
		ping = "ping address",
		call = "call address ...",
		trace = "trace address [proto] [on|off]",
		netstat = "netstat : show netstat",
		profactive = "profactive [on|off] : active/deactive jemalloc heap profilling",
		dumpheap = "dumpheap : dump heap profilling",
		killtask = "killtask address threadname : threadname listed by task",
		dbgcmd = "run address debug command",
		getenv = "getenv name : skynet.getenv(name)",
		setenv = "setenv name value: skynet.setenv(name,value)",
	}
end

function COMMAND.clearcache()
	codecache.clear()
end

function COMMAND.start(name, ...)
	local ok, addr = pcall(skynet.newservice, name, ...)
	if not ok then
		return "Failed"
	end
	if not addr then
		-- the service finished its start and exited
		return "Exit"
	end
	return { [skynet.address(addr)] = name }
end

-- Like start, but the launcher turns on the message log of the new service.
function COMMAND.log(name, ...)
	local ok, addr = pcall(skynet.call, ".launcher", "lua", "LOGLAUNCH", "snlua", name, ...)
	if ok and addr then
		return { [skynet.address(addr)] = name }
	end
	return "Failed"
end

function COMMAND.snax(name, ...)
	local ok, obj = pcall(snax.newservice, name, ...)
	if not ok then
		return "Failed"
	end
	return { [skynet.address(obj.handle)] = name }
end

function COMMAND.service()
	return skynet.call("SERVICE", "lua", "LIST")
end

function COMMAND.list()
	return skynet.call(".launcher", "lua", "LIST")
end

function COMMAND.stat(ti)
	return skynet.call(".launcher", "lua", "STAT", time_limit(ti))
end

function COMMAND.mem(ti)
	return skynet.call(".launcher", "lua", "MEM", time_limit(ti))
end

function COMMAND.gc(ti)
	return skynet.call(".launcher", "lua", "GC", time_limit(ti))
end

function COMMAND.kill(address)
	return skynet.call(".launcher", "lua", "KILL", to_address(address))
end

-- Asks a Lua service to exit by itself.
function COMMAND.exit(address)
	skynet.send(to_address(address), "debug", "EXIT")
end

function COMMAND.inject(address, filename, ...)
	local target = to_address(address)
	local f = io.open(filename, "rb")
	if not f then
		return "Can't open " .. filename
	end
	local source = f:read "a"
	f:close()
	local ok, output = skynet.call(target, "debug", "RUN", source, filename, ...)
	if ok == false then
		error(output)
	end
	return output
end

function COMMAND.dbgcmd(address, cmd, ...)
	return debug_call(address, cmd, ...)
end

function COMMAND.task(address)
	return debug_call(address, "TASK")
end

function COMMAND.uniqtask(address)
	return debug_call(address, "UNIQTASK")
end

function COMMAND.killtask(address, threadname)
	return debug_call(address, "KILLTASK", threadname)
end

function COMMAND.info(address, ...)
	return debug_call(address, "INFO", ...)
end

function COMMAND.logon(address)
	core.command("LOGON", skynet.address(to_address(address)))
end

function COMMAND.logoff(address)
	core.command("LOGOFF", skynet.address(to_address(address)))
end

function COMMAND.signal(address, sig)
	local target = skynet.address(to_address(address))
	if sig then
		local n = assert(math.tointeger(tonumber(sig)), "Invalid signal")
		core.command("SIGNAL", string.format("%s %d", target, n))
	else
		core.command("SIGNAL", target)
	end
end

-- C-side memory by service, plus totals.
function COMMAND.cmem()
	local out = {}
	for handle, bytes in pairs(memory.info()) do
		out[skynet.address(handle)] = bytes
	end
	out.total = memory.total()
	out.block = memory.block()
	return out
end

function COMMAND.jmem()
	local out = {}
	for k, v in pairs(memory.jestat()) do
		out[k] = string.format("%11d  %8.2f Mb", v, v / 1048576)
	end
	return out
end

-- Round trip time, in centiseconds, of a debug PING.
function COMMAND.ping(address)
	local target = to_address(address)
	local t0 = skynet.now()
	skynet.call(target, "debug", "PING")
	return tostring(skynet.now() - t0)
end

-- trace address on|off          -- every protocol
-- trace address proto [on|off]
function COMMAND.trace(address, proto, flag)
	local target = to_address(address)
	if flag ~= nil then
		flag = on_off(flag)
	elseif proto == "on" or proto == "off" then
		proto = on_off(proto)
	end
	skynet.call(target, "debug", "TRACELOG", proto, flag)
end

-- call address <Lua expressions>: the arguments are evaluated as a Lua
-- expression list in an empty environment and sent with the "lua" protocol.
function COMMANDX.call(cmd)
	local target = to_address(cmd[2])
	local arglist = assert(cmd[1]:match "^%s*%S+%s+%S+%s(.+)$", "need arguments")
	local chunk = assert(load("return " .. arglist, "debug console", "t", {}), "Invalid arguments")
	local values = table.pack(pcall(chunk))
	if not values[1] then
		error(values[2])
	end
	return table.pack(skynet.call(target, "lua", table.unpack(values, 2, values.n)))
end

-- debug address: hands the connection to a debug_agent service, which attaches
-- the remote debugger to the target. Lines typed meanwhile go to the agent until
-- the debugger continues ("cont") or the connection ends.
function COMMANDX.debug(cmd)
	local target = to_address(cmd[2])
	local fd = cmd.fd
	local agent = skynet.newservice "debug_agent"
	local attached = false
	local me = coroutine.running()
	local relay_done = false
	skynet.fork(function()
		pcall(function()
			repeat
				-- fails once the agent has exited
				skynet.call(agent, "lua", "ping")
				local line = socket.readline(fd, "\n")
				if not line then
					skynet.send(agent, "lua", "cmd", "cont")
					return
				end
				line = line:gsub("\r$", "")
				skynet.send(agent, "lua", "cmd", line)
			until attached or line == "cont"
		end)
		relay_done = true
		if attached then
			skynet.wakeup(me)
		end
	end)
	local ok, err = skynet.call(agent, "lua", "start", target, fd)
	attached = true
	-- the relay reads this connection too: wait until it has let go of it
	if not relay_done then
		skynet.wait(me)
	end
	if not ok then
		error(err)
	end
end

-- Socket statistics with sizes in K/M and times as "seconds ago".
local function human_bytes(n)
	if n == nil or n == 0 then
		return nil
	end
	if n < 1024 then
		return n
	end
	if n < 1024 * 1024 then
		return tostring(n / 1024) .. "K"
	end
	return tostring(n / (1024 * 1024)) .. "M"
end

local function age(now, t)
	if t == nil then
		return nil
	end
	local d = now - t
	if d < 6000 then
		return tostring(d / 100) .. "s"
	end
	local hours = d // 360000
	d = d - hours * 360000
	local minutes = d // 6000
	local seconds = (d - minutes * 6000) / 100
	return string.format("%s%d:%.2gs", hours == 0 and "" or (hours .. ":"), minutes, seconds)
end

function COMMAND.netstat()
	local now = skynet.now()
	local list = socket.netstat()
	for _, s in ipairs(list) do
		s.address = skynet.address(s.address)
		s.read = human_bytes(s.read)
		s.write = human_bytes(s.write)
		s.wbuffer = human_bytes(s.wbuffer)
		s.rtime = age(now, s.rtime)
		s.wtime = age(now, s.wtime)
	end
	return list
end

function COMMAND.dumpheap()
	memory.dumpheap()
end

function COMMAND.profactive(flag)
	if flag ~= nil then
		if flag == "on" or flag == "off" then
			flag = on_off(flag)
		end
		memory.profactive(flag)
	end
	if memory.profactive() then
		return "heap profilling is active"
	end
	return "heap profilling is deactive"
end

function COMMAND.getenv(name)
	return { [name] = tostring(skynet.getenv(name)) }
end

function COMMAND.setenv(name, value)
	return skynet.setenv(name, value)
end
