// BenchBolt.java: the official Neo4j Java driver side of `make bench-bolt`.
//
// A benchmark, not a test: see bench/bolt/README.md. Same protocol and workloads as
// bench/bolt/bench_bolt.c: bench/bolt/harness.py sends "write", "read" or "quit" on stdin,
// one a line, and measures wall time and this process's CPU time (/proc/<pid>/stat, so the
// driver's Netty event loop, the GC and the JIT threads are all counted) around each one.
// The harness sends one unmeasured warm-up write and read first, for the JIT.
//
//   write  executeWrite (managed transaction, one per batch) of the UNWIND/MERGE query;
//          answers "ok write rows=N created=C"
//   read   session.run of the MATCH query, every value decoded (asLong/asString/asDouble);
//          answers "ok read rows=N sum_id=S name_bytes=B sum_value=V"
//
// The rows are built once at start-up as List<Map<String, Object>> batches (not measured):
// what an application hands the driver. Converting them to driver values and packing them
// is measured. Driver defaults otherwise (fetch size 1000), but notifications are switched
// off as the cgw client does by default.
//
// Environment: BENCH_URI, NEO4J_USER, NEO4J_PASSWORD, BENCH_ROWS, BENCH_BATCH.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.neo4j.driver.AccessMode;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Config;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import org.neo4j.driver.Logging;
import org.neo4j.driver.NotificationSeverity;
import org.neo4j.driver.Record;
import org.neo4j.driver.Result;
import org.neo4j.driver.Session;
import org.neo4j.driver.SessionConfig;

public final class BenchBolt {
    static final String WRITE_QUERY = "UNWIND $rows AS r MERGE (n:BenchRow {id: r.id}) "
            + "SET n.name = r.name, n.value = r.value, n.ts = r.ts";
    static final String READ_QUERY = "MATCH (n:BenchRow) RETURN n.id, n.name, n.value";

    static String env(String k, String dflt) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? dflt : v;
    }

    // The same rows in every client: id i, name "row-%08d", value i/2, ts 1.7e12 + i.
    static List<List<Map<String, Object>>> makeBatches(int n, int batch) {
        List<List<Map<String, Object>>> out = new ArrayList<>();
        for (int start = 0; start < n; start += batch) {
            int m = Math.min(batch, n - start);
            List<Map<String, Object>> rows = new ArrayList<>(m);
            for (int i = start; i < start + m; i++) {
                Map<String, Object> r = new HashMap<>(8);
                r.put("id", (long) i);
                r.put("name", String.format("row-%08d", i));
                r.put("value", i * 0.5);
                r.put("ts", 1700000000000L + i);
                rows.add(r);
            }
            out.add(rows);
        }
        return out;
    }

    static String write(Driver driver, List<List<Map<String, Object>>> batches, int n) {
        long created = 0;
        try (Session s = driver.session(SessionConfig.forDatabase("neo4j"))) {
            for (List<Map<String, Object>> rows : batches) {
                Map<String, Object> params = Map.of("rows", rows);
                created += s.executeWrite(
                        tx -> tx.run(WRITE_QUERY, params).consume().counters().nodesCreated());
            }
        }
        return "ok write rows=" + n + " created=" + created;
    }

    static String read(Driver driver) {
        long rows = 0, sumId = 0, nameBytes = 0;
        double sumValue = 0;
        SessionConfig cfg = SessionConfig.builder()
                .withDatabase("neo4j")
                .withDefaultAccessMode(AccessMode.READ)
                .build();
        try (Session s = driver.session(cfg)) {
            Result r = s.run(READ_QUERY);
            while (r.hasNext()) {
                Record rec = r.next();
                sumId += rec.get(0).asLong();
                nameBytes += rec.get(1).asString().length();   // ASCII: chars == bytes
                sumValue += rec.get(2).asDouble();
                rows++;
            }
        }
        return "ok read rows=" + rows + " sum_id=" + sumId + " name_bytes=" + nameBytes
                + " sum_value=" + String.format("%.1f", sumValue);
    }

    public static void main(String[] args) throws Exception {
        int n = Integer.parseInt(env("BENCH_ROWS", "100000"));
        int batch = Integer.parseInt(env("BENCH_BATCH", "1000"));
        List<List<Map<String, Object>>> batches = makeBatches(n, batch);
        // Notifications off, as the cgw client does by default (notifications_off).
        Config config = Config.builder()
                .withLogging(Logging.none())
                .withMinimumNotificationSeverity(NotificationSeverity.OFF)
                .build();
        try (Driver driver = GraphDatabase.driver(env("BENCH_URI", "bolt://127.0.0.1:7687"),
                AuthTokens.basic(env("NEO4J_USER", "neo4j"),
                        env("NEO4J_PASSWORD", "cgw-local-password")), config)) {
            driver.verifyConnectivity();   // connecting is not measured in any client
            String protocol;
            try (Session s = driver.session(SessionConfig.forDatabase("neo4j"))) {
                protocol = s.run("RETURN 1").consume().server().protocolVersion();
            }
            System.out.println("ready neo4j-java-driver "
                    + Driver.class.getPackage().getImplementationVersion().split("-")[0] + ", Bolt "
                    + protocol + ", Java "
                    + System.getProperty("java.version"));
            System.out.flush();
            BufferedReader in = new BufferedReader(
                    new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                line = line.trim();
                if (line.equals("quit")) break;
                String answer;
                try {
                    if (line.equals("write")) answer = write(driver, batches, n);
                    else if (line.equals("read")) answer = read(driver);
                    else answer = "err unknown command " + line;
                } catch (RuntimeException e) {
                    answer = "err " + line + " " + e.toString().replace('\n', ' ');
                }
                System.out.println(answer);
                System.out.flush();
            }
        }
    }
}
