/* config_files.c: checks of the PEM files a configuration names (the Valkey TLS files).
 *
 * Why here: a file that is missing, unreadable, not PEM, an encrypted key or a key of another
 * certificate would only fail when `cgw run` builds its TLS context; checking it while the
 * configuration loads makes `cgw check-config` refuse it the same way, with the key's name.
 * How: OpenSSL's PEM readers, the same ones the TLS context loading uses; a key is read with a
 * password callback that refuses, so an encrypted key is an error and never a prompt.
 */
#include "config/config_files.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static FILE *open_regular(const char *path, char *why, size_t len) {
    struct stat st;
    FILE *f = NULL;
    if (stat(path, &st) != 0 || (S_ISREG(st.st_mode) && !(f = fopen(path, "r"))))
        snprintf(why, len, "cannot read %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(why, len, "cannot read %s: not a regular file", path);
    return f;
}

static int count_certificates(FILE *f) {
    int n = 0;
    X509 *x;
    while ((x = PEM_read_X509(f, NULL, no_password, NULL))) {
        X509_free(x);
        n++;
    }
    return n;
}

int config_check_pem(const char *path, enum config_pem kind, char *why, size_t len) {
    FILE *f = open_regular(path, why, len);
    if (!f) return -1;
    int ok;
    if (kind == CONFIG_PEM_KEY) {
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, no_password, NULL);
        ok = k != NULL;
        EVP_PKEY_free(k);
    } else {
        ok = count_certificates(f) > 0;
    }
    fclose(f);
    ERR_clear_error();
    if (ok) return 0;
    snprintf(why, len, "%s holds no %s", path,
             kind == CONFIG_PEM_KEY ? "unencrypted PEM private key" : "PEM certificate");
    return -1;
}

int config_check_key_pair(const char *cert_path, const char *key_path, char *why, size_t len) {
    FILE *cf = fopen(cert_path, "r"), *kf = fopen(key_path, "r");
    X509 *x = cf ? PEM_read_X509(cf, NULL, no_password, NULL) : NULL;
    EVP_PKEY *k = kf ? PEM_read_PrivateKey(kf, NULL, no_password, NULL) : NULL;
    int ok = x && k && X509_check_private_key(x, k) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    if (cf) fclose(cf);
    if (kf) fclose(kf);
    ERR_clear_error();
    if (ok) return 0;
    snprintf(why, len, "the key in %s does not belong to the certificate in %s", key_path, cert_path);
    return -1;
}
