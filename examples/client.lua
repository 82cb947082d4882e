-- The example's client (run by the binary's own Lua: `skynet lua examples/client.lua
-- [host] [port]`, from the repository root). It logs in with a handshake, then reads
-- commands from stdin, one a line:
--   get KEY           ask for a value
--   set KEY VALUE     store a value
--   quit              ask the server to close the connection
-- and prints every answer and heartbeat the server sends.
package.path = "lualib/?.lua;examples/?.lua;" .. package.path

local socket = require "client.socket"
local sproto = require "sproto"
local proto = require "proto"

local address = arg[1] or "127.0.0.1"
local port = tonumber(arg[2]) or 8888

local host = sproto.new(proto.s2c):host "package"
local request = host:attach(sproto.new(proto.c2s))
local fd = assert(socket.connect(address, port))

local session = 0

local function send(name, args)
	session = session + 1
	socket.send(fd, string.pack(">s2", request(name, args, session)))
	print("Request:", session, name)
end

local function show(kind, id, args)
	print(kind, id)
	if args then
		local keys = {}
		for k in pairs(args) do
			keys[#keys + 1] = k
		end
		table.sort(keys)
		for _, k in ipairs(keys) do
			print(k, args[k])
		end
	end
end

-- bytes received and not yet a whole package
local pending = ""

local function receive()
	while true do
		if #pending >= 2 then
			local size = pending:byte(1) * 256 + pending:byte(2)
			if #pending >= size + 2 then
				local pack = pending:sub(3, 2 + size)
				pending = pending:sub(3 + size)
				local kind, a, b = host:dispatch(pack)
				show(kind, a, b)
				goto continue
			end
		end
		do
			local data = socket.recv(fd)
			if not data then
				return
			end
			if data == "" then
				print "Server closed"
				os.exit(0)
			end
			pending = pending .. data
		end
		::continue::
	end
end

local COMMAND = {}

function COMMAND.get(key)
	send("get", { what = key })
end

function COMMAND.set(key, value)
	send("set", { what = key, value = value })
end

function COMMAND.quit()
	send("quit")
end

send("handshake")
while true do
	receive()
	local line = socket.readstdin()
	if line then
		local words = {}
		for w in line:gmatch "%S+" do
			words[#words + 1] = w
		end
		local f = COMMAND[words[1]]
		if f then
			f(table.unpack(words, 2))
		elseif #words > 0 then
			print("unknown command", words[1])
		end
	else
		socket.usleep(100)
	end
end
