/* config_files.h: checks of the files a configuration names, made while it is loaded, so
 * `cgw check-config` refuses what `cgw run` would fail on (internal to src/config). */
#ifndef CGW_CONFIG_FILES_H
#define CGW_CONFIG_FILES_H

#include <stddef.h>

enum config_pem {
    CONFIG_PEM_CA,          /* one or more certificates (a CA bundle) */
    CONFIG_PEM_CERT,        /* a certificate (chain), the first one is the subject's */
    CONFIG_PEM_KEY,         /* an unencrypted private key */
};

/* 0 when path is a readable regular file holding what `kind` says; -1 and why (no file
 * content, no secret) otherwise. */
int config_check_pem(const char *path, enum config_pem kind, char *why, size_t len);

/* 0 when the private key in key_path belongs to the first certificate of cert_path. */
int config_check_key_pair(const char *cert_path, const char *key_path, char *why, size_t len);

#endif
