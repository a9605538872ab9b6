# mk/package.mk -- checks and packages built from an install: the exported
# symbols, a staged install used as a new user would, the LuaLS types,
# the luarocks rock and the Debian packages.

.PHONY: symbols check-symbols check-install check-types check-rock deb \
        check-deb check-package

# corio.symbols is the exported C API; `make symbols` rewrites it.
symbols: $(BUILD)/libcorio.so
	sh tools/check-symbols.sh $(BUILD)/libcorio.so.$(VERSION) corio.symbols --write

check-symbols: $(BUILD)/libcorio.so
	sh tools/check-symbols.sh $(BUILD)/libcorio.so.$(VERSION) corio.symbols

check-install: all
	sh tools/check-install.sh

# Every public module the binary embeds (and every class) has a ---@meta
# definition in types/.
check-types: $(BUILD)/corio
	$(BUILD)/corio tools/check-types.lua $(wildcard types/*.lua types/*/*.lua)

# Everything CI runs for packaging, after `make test`.
check-package: check-symbols check-install check-types check-rock check-deb
