# bench/e2e/ceiling.mk: builds the ceiling program of the end-to-end benchmark with exactly
# the project Makefile's flags, by including it (the Makefile itself is not changed):
#
#   make -f bench/e2e/ceiling.mk MODE=release var/bench/ceiling
#
# scripts/bench-e2e runs this; the binary goes under var/ (git-ignored), next to the results.
include Makefile

var/bench/ceiling: bench/e2e/ceiling.c $(B)/libcgw.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libcgw.a $(LDLIBS)
