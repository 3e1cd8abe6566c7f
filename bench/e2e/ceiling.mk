# bench/e2e/ceiling.mk: builds the benchmark's C programs (the ceiling, bench/e2e/ceiling.c, and
# the Kafka read limit, bench/e2e/kafka_read.c) with exactly the project Makefile's flags and
# libraries (the same static librdkafka as the worker), by including it (the Makefile itself is
# not changed):
#
#   make -f bench/e2e/ceiling.mk MODE=release var/bench/ceiling var/bench/kafka_read
#
# scripts/bench-e2e runs this; the binaries go under var/ (git-ignored), next to the results.
include Makefile

var/bench/ceiling: bench/e2e/ceiling.c bench/e2e/bench_clock.h $(B)/libcgw.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libcgw.a $(LDLIBS)

var/bench/kafka_read: bench/e2e/kafka_read.c bench/e2e/bench_clock.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)
