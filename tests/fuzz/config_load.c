/* tests/fuzz/config_load.c: libFuzzer target for the configuration loader and the shared
 * configuration check (src/config/config.c, src/pipeline/options.c).
 *
 * The input is the YAML text of a configuration file. It goes through config_load_string (the
 * path config_load takes after opening the file: libyaml, the key table, ${ENV} substitution,
 * every type, format and cross-key rule), and whatever loads goes through pipeline_check_config,
 * the offline check `cgw check-config` and `cgw run` share (librdkafka's property table, the
 * Bolt URI parser, each client's option check; nothing connects), then the redacted dump.
 * A few environment variables are set once so substitution has something to find, among them
 * one whose value looks like a reference (it must not be expanded again) and a secret.
 * Promises checked beyond the sanitizers: a load fails exactly when it returns no struct, with
 * one printable line that starts with "config: " and never holds the secret; the check's
 * failures look the same; the dump shows every secret key redacted.
 *
 *   make fuzz-config_load
 *   build/fuzz/config_load -dict=tests/fuzz/config_load.dict <scratch dir> tests/fuzz/config_load/
 * (or scripts/fuzz config_load)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "pipeline/pipeline.h"

#define FUZZ_SECRET "fz-Secret-7Qw"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    setenv("FZ_HOST", "127.0.0.1", 1);
    setenv("FZ_PORT", "6380", 1);
    setenv("FZ_URL", "http://user:pw@127.0.0.1:8080/x", 1);
    setenv("FZ_EMPTY", "", 1);
    setenv("FZ_REF", "${FZ_HOST}", 1);          /* values are never expanded again */
    setenv("FZ_LIST", "1, 2,3", 1);
    setenv("FZ_SECRET", FUZZ_SECRET, 1);
    unsetenv("FZ_UNSET");
    /* valkey.tls: true makes the check build a TLS context, which loads the system's CA bundle
     * (a second per input under ASan); OpenSSL then finds no bundle and goes on without it. */
    setenv("SSL_CERT_FILE", "/nonexistent/cgw-fuzz-ca.pem", 1);
    return 0;
}

/* Is the secret (the variable or its text) only ever the whole value of a secret key, written
 * "key: value" on one line? Only then must no message show it: the loader cannot know that a
 * variable used in another key is a secret. Aliases and multi-line scalars could carry it
 * elsewhere, so inputs with '*' or a use on a line of another shape are not judged. */
static bool secret_only_in_secret_keys(const char *text, size_t size) {
    if (memchr(text, '*', size)) return false;
    for (const char *line = text, *end = text + size; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (memmem(line, n, "FZ_SECRET", 9) || memmem(line, n, FUZZ_SECRET, strlen(FUZZ_SECRET))) {
            const char *colon = memchr(line, ':', n);
            char key[128];
            size_t k = colon ? (size_t)(colon - line) : 0;
            if (!colon || memchr(colon + 1, ':', n - k - 1) || k >= sizeof key) return false;
            if (memmem(line, k, "FZ_SECRET", 9) || memmem(line, k, FUZZ_SECRET, strlen(FUZZ_SECRET)))
                return false;                       /* in the key: keys are shown */
            for (size_t i = 0; i < n; i++)
                if (strchr("{[,?|>\"'", line[i]) && line[i]) return false;   /* one plain "key: value" */
            size_t skip = strspn(line, " -");
            snprintf(key, sizeof key, "%.*s", (int)(k - skip), line + skip);
            size_t kl = strlen(key);
            if (!config_secret_property(key) || (kl >= 7 && strcmp(key + kl - 7, "_header") == 0)) return false;
        }
        line += n + 1;
    }
    return true;
}

/* One line, printable, "config: " first; the secret only where it may be shown. */
static void check_message(const char *err, size_t cap, bool secret_hidden) {
    if (strlen(err) >= cap || strncmp(err, "config: ", 8) != 0) __builtin_trap();
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) __builtin_trap();
    if (secret_hidden && strstr(err, FUZZ_SECRET)) __builtin_trap();
}

static bool secret_line_ok(const char *line) {
    static const char *const keys[] = { "kafka.sasl_password: ", "neo4j.password: ", "valkey.password: ",
                                        "flags.http_token: ", "schema_registry.password: ", "metrics.token: " };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t n = strlen(keys[i]);
        if (strncmp(line, keys[i], n) != 0) continue;
        const char *v = line + n;
        return strcmp(v, "~") == 0 || strcmp(v, "\"\"") == 0 || strcmp(v, "\"<redacted>\"") == 0;
    }
    return true;
}

static void check_dump(const struct cgw_config *cfg) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    config_redacted_dump(cfg, f);
    fclose(f);
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (!secret_line_ok(line)) __builtin_trap();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct cgw_config *cfg = (struct cgw_config *)1;
    char err[512];
    err[0] = '\0';
    int rc = config_load_string((const char *)data, size, "fuzz.yaml", &cfg, err, sizeof err);
    if ((rc == 0) != (cfg != NULL) || (rc != 0 && rc != -1)) __builtin_trap();
    bool hidden = secret_only_in_secret_keys((const char *)data, size);
    if (rc != 0) {
        check_message(err, sizeof err, hidden);
        return 0;
    }
    err[0] = '\0';
    if (pipeline_check_config(cfg, err, sizeof err) != 0) check_message(err, sizeof err, hidden);
    check_dump(cfg);
    config_free(cfg);
    return 0;
}
