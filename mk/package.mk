# mk/package.mk -- checks and packages built from an install: the exported
# symbols, a staged install used as a new user would, the LuaLS types,
# the luarocks rock and the Debian packages.

.PHONY: symbols check-symbols check-install check-types check-rock deb \
        rockspec rock install-rock test-checks \
        check-deb check-package check-man

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

# corio(1) renders with man -l, warning-free, and names every option of
# corio --help.
check-man: $(BUILD)/corio $(BUILD)/corio.1
	sh tools/check-man.sh $(BUILD)/corio $(BUILD)/corio.1

# Everything CI runs for packaging, after `make test`.
check-package: test-checks check-symbols check-install check-types check-man check-rock check-deb

# The luarocks rock.  rockspec/ holds the rockspec of VERSION, generated
# from tools/corio.rockspec.in; luarocks runs `make rock` then
# `make install-rock INST_LIBDIR=... INST_BINDIR=...` in the checkout.
ROCKSPEC = rockspec/corio-$(VERSION)-1.rockspec

rockspec:
	@mkdir -p rockspec
	sed 's/@VERSION@/$(VERSION)/g' tools/corio.rockspec.in > $(ROCKSPEC)

rock: $(BUILD)/corio.so $(BUILD)/corio

install-rock: rock
	install -d $(INST_LIBDIR) $(INST_BINDIR)
	install -m 755 $(BUILD)/corio.so $(INST_LIBDIR)/corio.so
	install -m 755 $(BUILD)/corio $(INST_BINDIR)/corio

# Debian's luarocks installs the rock into a fresh tree (no network), and
# stock lua5.4 with the tree's paths runs a task.
check-rock: all
	sh tools/check-rock.sh $(ROCKSPEC)

# Debian packages with Debian's own tools: dpkg-buildpackage on a copy of
# the tree in build/deb/corio-VERSION (so the .debs land in build/deb/, not
# beside the checkout), with debian/changelog written from VERSION.
DEB_DIR = build/deb

deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/corio-$(VERSION)
	tar -cf - --exclude=./build --exclude=./.git . | \
	  tar -xf - -C $(DEB_DIR)/corio-$(VERSION)
	sh tools/deb-changelog.sh $(VERSION) \
	  > $(DEB_DIR)/corio-$(VERSION)/debian/changelog
	cd $(DEB_DIR)/corio-$(VERSION) && dpkg-buildpackage -b -us -uc
	@ls $(DEB_DIR)/*.deb

# Installs the four packages (dpkg -i, as root), smoke-tests them and
# removes them again.
check-deb: deb
	sh tools/check-deb.sh $(DEB_DIR)

# The checks above fail when they should (tools/test-checks.sh).
test-checks: all $(BUILD)/corio.1
	sh tools/test-checks.sh $(BUILD)
