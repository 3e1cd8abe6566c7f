/* src/registry/proto_text.h: a small, strict, bounded parser of .proto source text, and the
 * check that decides whether a schema is one the factoid consumer can read.
 *
 * The schema registry answers a schema id with the .proto text it was registered from
 * (docs/contract.md §1). The worker decodes factoids with protobuf-c code generated
 * at build time from proto/factoids/v1/factoid.proto, so what a schema id must promise is
 * that its first message is factoids.v1.Factoid with every field the worker reads unchanged
 * in number and type (registry_proto_check_factoid below). Only what that check needs is
 * kept: package, imports, and the tree of messages (fields with label, type name, number,
 * oneof) and enums (values). Everything else the grammar allows (options, reserved,
 * extensions, extend and service blocks, map fields' key/value types) is parsed for
 * well-formedness and dropped.
 *
 * Used by registry.c on each schema text the registry serves (once per schema id) and by
 * the fuzz target tests/fuzz/registry_proto.c. Input is untrusted: see the limits below;
 * the parser never reads past len, never recurses deeper than REGISTRY_PROTO_MAX_DEPTH,
 * and fails with a one-line printable message ("line N: ...") on anything it does not
 * understand. All nodes live in one arena freed by registry_proto_free().
 */
#ifndef CGW_REGISTRY_PROTO_TEXT_H
#define CGW_REGISTRY_PROTO_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define REGISTRY_PROTO_MAX_TEXT  (1u << 20)  /* bytes of .proto text */
#define REGISTRY_PROTO_MAX_DEPTH 32          /* nested messages */
#define REGISTRY_PROTO_MAX_DECLS 20000       /* fields + messages + enums + enum values */
#define REGISTRY_PROTO_MAX_IDENT 256         /* one identifier */
#define REGISTRY_PROTO_MAX_NAME  1024        /* a dotted or fully-qualified name */

enum registry_proto_label {
    REGISTRY_PROTO_LABEL_NONE = 0,
    REGISTRY_PROTO_LABEL_OPTIONAL,
    REGISTRY_PROTO_LABEL_REQUIRED,
    REGISTRY_PROTO_LABEL_REPEATED
};

struct registry_proto_field {
    const char *name;
    const char *type;          /* as written: "string", "ShopOrder", ".google.protobuf.X";
                                  "map" for a map<K,V> field; "group" type for groups is
                                  the group's message name */
    int32_t number;
    enum registry_proto_label label;
    int is_map;
    const char *oneof;         /* name of the enclosing oneof, or NULL */
    int line;
    struct registry_proto_field *next;
};

struct registry_proto_enum_value {
    const char *name;
    int32_t number;
    struct registry_proto_enum_value *next;
};

struct registry_proto_enum {
    const char *name;
    const char *fqn;           /* fully-qualified, without the leading dot */
    struct registry_proto_enum_value *values;
    struct registry_proto_enum *next;
};

struct registry_proto_message {
    const char *name;
    const char *fqn;
    struct registry_proto_field *fields;        /* declaration order */
    struct registry_proto_message *messages;    /* nested, declaration order */
    struct registry_proto_enum *enums;
    struct registry_proto_message *next;
};

struct registry_proto_import {
    const char *path;          /* the string as written, escapes left as they are */
    struct registry_proto_import *next;
};

struct registry_proto_file {
    const char *syntax;        /* "proto2", "proto3", an edition ("2023"), or NULL */
    const char *package;       /* "" when none */
    struct registry_proto_import *imports;
    struct registry_proto_message *messages;    /* top level, declaration order: index
                                                   path [i] of the Confluent frame */
    struct registry_proto_enum *enums;
    struct registry_proto_arena *arena;         /* owns every node and string above */
};

/* Parses text[0..len). NULL on any error (message in err) or when out of memory. */
struct registry_proto_file *registry_proto_parse(const char *text, size_t len, char *err,
                                                 size_t errlen);
void registry_proto_free(struct registry_proto_file *f);

/* 0 when f declares factoids.v1.Factoid as its first message with the fields the worker
 * reads (see proto_text.c for the list) unchanged in number, type and cardinality, all of
 * their message and enum types defined in f itself (google.protobuf.Timestamp imported).
 * -1 otherwise, with a reason naming the first field that differs. */
int registry_proto_check_factoid(const struct registry_proto_file *f, char *reason,
                                 size_t reasonlen);

/* Parse + check in one call: 0 accepted, -1 refused (reason says why). */
int registry_proto_accepts(const char *text, size_t len, char *reason, size_t reasonlen);

#endif
