---@meta corio.fs
-- LuaLS definitions of `require "corio.fs"` (docs/API-fs-process.md).

---An open file (`fs.open`); also closed by `<close>` and the GC.
---@class corio.File
local File = {}

---Lua's formats: "l" (default), "L", "n", "a", or a count.
---@async
---@param ... "l"|"L"|"n"|"a"|"*l"|"*L"|"*n"|"*a"|integer
---@return string|number|nil ...
function File:read(...) end

---Iterator over `f:read(...)`.
---@param ... "l"|"L"|"n"|"a"|integer
---@return fun(): string|number|nil
function File:lines(...) end

---@async
---@param ... string|number
---@return corio.File self
function File:write(...) end

---@param whence? "set"|"cur"|"end" default "cur"
---@param offset? integer
---@return integer position
function File:seek(whence, offset) end

---@async
---@return corio.Stat
function File:stat() end

---fsync.
---@async
---@return corio.File self
function File:sync() end

---@async
---@param size? integer default: the position
---@return corio.File self
function File:truncate(size) end

---Does nothing (writes are not buffered).
---@return corio.File self
function File:flush() end

---@return integer fd
function File:fileno() end

---@async
---@return true
function File:close() end

---A file-system watch (`fs.watch`), alive until `close()`.
---@class corio.Watcher
local Watcher = {}

function Watcher:close() end

---@return string
function Watcher:path() end

---@class corio.Stat
---@field size integer
---@field type "file"|"directory"|"link"|"fifo"|"socket"|"char"|"block"|"unknown"
---@field mode integer the permission bits
---@field mtime number
---@field atime number
---@field ctime number
---@field birthtime number
---@field ino integer
---@field dev integer
---@field nlink integer
---@field uid integer
---@field gid integer
---@field rdev integer
---@field blksize integer
---@field blocks integer

---@class corio.fs
---@field File corio.File the File class
local fs = {}

---The whole file, read in one pool job.
---@async
---@param path string
---@return string
function fs.read_file(path) end

---@async
---@param path string
---@param data string
---@param opts? { atomic?: boolean, append?: boolean, mode?: integer }
function fs.write_file(path, data, opts) end

---@async
---@param path string
---@param mode? string io.open's: "r" (default), "w", "a", "r+", "w+", "a+", with "b", "x"
---@param perm? integer|string default 0666 ("644" as an octal string)
---@return corio.File
function fs.open(path, mode, perm) end

---Opens `path` and iterates `read(...)`, like io.lines.
---@async
---@param path string
---@param ... "l"|"L"|"n"|"a"|integer
---@return fun(): string|number|nil
function fs.lines(path, ...) end

---@async
---@param path string
---@return corio.Stat
function fs.stat(path) end

---@async
---@param path string
---@return corio.Stat
function fs.lstat(path) end

---@async
---@param path string
---@return boolean
function fs.exists(path) end

---@async
---@param path string
---@param opts? { parents?: boolean, mode?: integer }
function fs.mkdir(path, opts) end

---@async
---@param path string
function fs.rmdir(path) end

---@async
---@param path string
function fs.remove(path) end

---@async
---@param from string
---@param to string
function fs.rename(from, to) end

---@async
---@param from string
---@param to string
---@param opts? { exclusive?: boolean, clone?: boolean }
function fs.copyfile(from, to, opts) end

---Sorted by name, without . and ..
---@async
---@param path string
---@return { name: string, type: string }[]
function fs.readdir(path) end

---@async
---@param path string
---@return fun(): string?, string?
function fs.scandir(path) end

---@async
---@param template string ending in XXXXXX
---@return string path
function fs.mkdtemp(template) end

---@async
---@param path string
---@return string
function fs.realpath(path) end

---@async
---@param path string
---@return string
function fs.readlink(path) end

---@async
---@param target string
---@param linkpath string
function fs.symlink(target, linkpath) end

---@async
---@param path string
---@param mode integer|string
function fs.chmod(path, mode) end

---@async
---@param path string
---@param atime number
---@param mtime number
function fs.utime(path, atime, mtime) end

---`fn(filename, event)` runs as a loop callback per kind of event.
---With `recursive`, the whole tree (`filename` is the path under `path`),
---at most `max_watches` directories (8192; past it `LIMIT`).
---@param path string
---@param fn fun(filename: string?, event: "change"|"rename"|"error", err?: corio.Error)
---@param opts? { recursive?: boolean, max_watches?: integer }
---@return corio.Watcher
function fs.watch(path, fn, opts) end

return fs
