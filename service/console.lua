-- console: reads the node's stdin line by line. A line names a service to launch
-- with its arguments ("simpledb", "snax counter 10" for a snax service); blank lines
-- are ignored and a launch that fails is logged by the launcher. Without a readable
-- stdin (a node started in the background) the console says so and idles.
local skynet = require "skynet"
local snax = require "skynet.snax"
local socket = require "skynet.socket"

local function words(line)
	local w = {}
	for word in line:gmatch "%S+" do
		w[#w + 1] = word
	end
	return w
end

local function run(line)
	local w = words(line)
	if w[1] == "snax" then
		pcall(snax.newservice, table.unpack(w, 2))
	elseif #w > 0 then
		pcall(skynet.newservice, line)
	end
end

skynet.start(function()
	skynet.fork(function()
		local stdin, err = socket.stdin()
		if not stdin then
			skynet.error("console: no stdin: " .. tostring(err))
			return
		end
		while true do
			local line = socket.readline(stdin, "\n")
			if not line then
				skynet.error "console: stdin closed"
				return
			end
			run(line)
		end
	end)
end)
