-- Helper snax service for the cluster tests (not a test itself): reachable from
-- other nodes (snax.enablecluster), with a request and a one-way handler.
local snax = require "skynet.snax"

local count = 0

function init()
	snax.enablecluster()
end

function response.get()
	return count
end

function response.echo(...)
	return ...
end

function accept.add(n)
	count = count + n
end
