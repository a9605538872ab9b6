# mk/install.mk -- make install / make uninstall.
#
# Where things go.  PREFIX=/usr is the system's own tree (the Debian
# packages use it): libraries go in the multiarch folder lib/<triplet>, as
# Debian policy wants, and the Lua module in lib/<triplet>/lua/5.4, where
# Debian's lua5.4 looks.  Any other prefix (/usr/local, ~/.local,
# /opt/corio) uses plain lib/: the GNU default, which Debian's ld.so
# (/etc/ld.so.conf.d/libc.conf) and pkg-config both search for
# /usr/local, and lib/lua/5.4 is the first folder of stock lua5.4's
# package.cpath for /usr/local.  Each folder can also be set on its own.
#
# DESTDIR stages the tree elsewhere (packaging, tests); corio.pc finds its
# folders relative to itself (${pcfiledir}), so a staged or moved tree
# works with PKG_CONFIG_PATH alone (docs/INSTALL.md).

MULTIARCH  ?= $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || \
                gcc -print-multiarch 2>/dev/null)
ifeq ($(PREFIX),/usr)
LIBDIR     ?= $(PREFIX)/lib/$(MULTIARCH)
else
LIBDIR     ?= $(PREFIX)/lib
endif
BINDIR       ?= $(PREFIX)/bin
INCLUDEDIR   ?= $(PREFIX)/include
DATADIR      ?= $(PREFIX)/share
LUA_CMODDIR  ?= $(LIBDIR)/lua/5.4
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
TYPESDIR     ?= $(DATADIR)/corio/types
MANDIR       ?= $(DATADIR)/man

# The LuaLS definitions, as paths below types/.
TYPES = $(patsubst types/%,%,$(wildcard types/*.lua types/*/*.lua))

# ldconfig refreshes ld.so's cache after a real install (no DESTDIR) by
# root, so a host finds libcorio.so.0 at once; staged trees are left alone.
LDCONFIG = if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

.PHONY: install uninstall

# corio(1), with the version filled in
$(BUILD)/corio.1: docs/corio.1.in VERSION
	@mkdir -p $(BUILD)
	sed 's/@VERSION@/$(VERSION)/g' docs/corio.1.in > $@

install: all $(BUILD)/corio.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(LUA_CMODDIR) $(DESTDIR)$(TYPESDIR)/corio \
	  $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/corio $(DESTDIR)$(BINDIR)/corio
	install -m 644 $(BUILD)/corio.1 $(DESTDIR)$(MANDIR)/man1/corio.1
	install -m 644 $(BUILD)/libcorio.a $(DESTDIR)$(LIBDIR)/libcorio.a
	install -m 755 $(BUILD)/libcorio.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libcorio.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcorio.so.$(SOMAJOR)
	ln -sf libcorio.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libcorio.so
	install -m 755 $(BUILD)/corio.so $(DESTDIR)$(LUA_CMODDIR)/corio.so
	install -m 644 runtime/corio.h $(DESTDIR)$(INCLUDEDIR)/corio.h
	for f in $(TYPES); do \
	  install -m 644 types/$$f $(DESTDIR)$(TYPESDIR)/$$f || exit 1; done
	sh tools/corio-pc.sh $(VERSION) $(PREFIX) $(LIBDIR) $(INCLUDEDIR) \
	  $(PKGCONFIGDIR) > $(DESTDIR)$(PKGCONFIGDIR)/corio.pc
	@$(LDCONFIG)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/corio $(DESTDIR)$(LIBDIR)/libcorio.a \
	  $(DESTDIR)$(LIBDIR)/libcorio.so.$(VERSION) \
	  $(DESTDIR)$(LIBDIR)/libcorio.so.$(SOMAJOR) \
	  $(DESTDIR)$(LIBDIR)/libcorio.so $(DESTDIR)$(LUA_CMODDIR)/corio.so \
	  $(DESTDIR)$(INCLUDEDIR)/corio.h $(DESTDIR)$(PKGCONFIGDIR)/corio.pc \
	  $(DESTDIR)$(MANDIR)/man1/corio.1 \
	  $(addprefix $(DESTDIR)$(TYPESDIR)/,$(TYPES))
	-rmdir $(DESTDIR)$(TYPESDIR)/corio $(DESTDIR)$(TYPESDIR) \
	  $(DESTDIR)$(DATADIR)/corio 2>/dev/null
	@$(LDCONFIG)
