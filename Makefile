# builtin_pool: a connection pool inside PostgreSQL 15 (PGXS build)

MODULE_big = builtin_pool
OBJS = \
	admin.o \
	auth.o \
	builtin_pool.o \
	channel.o \
	client.o \
	conn.o \
	command.o \
	conflict.o \
	executor.o \
	greeting.o \
	extended.o \
	mainport.o \
	pool_io.o \
	pool_shmem.o \
	parse_ahead.o \
	pinning.o \
	prepared.o \
	protocol.o \
	proxy.o \
	redirect.o \
	relay.o \
	sequences.o \
	session.o \
	session_table.o \
	session_views.o \
	shutdown.o \
	sockets.o \
	startup.o \
	stats.o \
	tls.o \
	utility_hook.o

EXTENSION = builtin_pool
DATA = builtin_pool--1.0.sql
PGFILEDESC = "builtin_pool - connection pool inside the server"

PG_CPPFLAGS = -I$(libpq_srcdir)
SHLIB_LINK = -luring -lssl -lcrypto
SHLIB_LINK_INTERNAL = $(libpq)

REGRESS = pool_status
REGRESS_OPTS = --temp-instance=./tmp_check_regress --temp-config=$(srcdir)/test/regress.conf

TAP_TESTS = 1
EXTRA_CLEAN = tmp_check_regress

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild everything when a header changes
$(OBJS): $(wildcard $(srcdir)/*.h)
