-- sprotoloader: schemas shared by every service of the node through the 16 slots of
-- sproto.core (process-wide). A loader service saves them once at boot; agents load.
--
--   loader.register(filename, slot)   parse a schema file into a slot
--   loader.save(bin, slot)            a binary schema into a slot
--   loader.load(slot) -> sproto       (the shared schema is never freed)

local parser = require "sprotoparser"
local core = require "sproto.core"
local sproto = require "sproto"

local loader = {}

function loader.register(filename, slot)
	local f = assert(io.open(filename), "Can't open sproto file")
	local text = f:read "a"
	f:close()
	core.saveproto(core.newproto(parser.parse(text)), slot)
end

function loader.save(bin, slot)
	core.saveproto(core.newproto(bin), slot)
end

function loader.load(slot)
	return sproto.sharenew(core.loadproto(slot))
end

return loader
