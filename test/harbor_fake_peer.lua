-- Harbor fault tests: a fake slave (run on a harbor 0 node) that joins the
-- master at `fake_master` as harbor 2, but answers the link handshake of the
-- real harbor 1 with id 3. Then a second fake slave tries to join as harbor 2
-- again, which the master refuses.
local skynet = require "skynet"
local socket = require "skynet.socket"
local packet = require "skynet.harborpacket"

skynet.start(function()
	local master_addr = skynet.getenv "fake_master"
	local address = skynet.getenv "fake_address"
	local listener = socket.listen(address)
	socket.start(listener, function(fd)
		socket.start(fd)
		local id = assert(socket.read(fd, 1))
		print("peer says it is harbor " .. string.byte(id))
		socket.write(fd, string.char(3))
	end)
	local master = assert(socket.open(master_addr))
	packet.write(master, "H", 2, address)
	local t, n = packet.read(master)
	print("master answered " .. t .. " " .. n)
	local again = assert(socket.open(master_addr))
	packet.write(again, "H", 2, "127.0.0.1:1")
	print("second harbor 2 answered: " .. tostring((pcall(packet.read, again))))
end)
