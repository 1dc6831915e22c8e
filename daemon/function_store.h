/* Function records on disk: one JSON file per deployed function in <state_dir>/functions, written
 * atomically (a temporary file, fsync, rename, fsync of the directory) so that a crash or kill -9
 * leaves either the old record or the new one, never a torn one. hksd reads them back on start to
 * reconcile (restore live functions, reap expired ones).
 *
 * A record is a JSON object. The store checks the fields it and the reconciler rely on and keeps
 * the others as they are:
 *   {"id": "fn-<20 hex>", "project": S, "runtime": S, "created_at": unix s, "expires_at": unix s,
 *    ...}
 * Ids are generated here (hksd_function_id_new) and validated before any path is built from them,
 * so a request's id can never name a file outside the directory. */
#ifndef HKSD_FUNCTION_STORE_H
#define HKSD_FUNCTION_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "../common/common.h"

/* "fn-" and 20 lowercase hex digits (80 random bits): a DNS-1035 label, usable as a Knative
 * Service name and in a URL path. */
#define HKSD_FUNCTION_ID_LEN 23
/* A record holds settings, never code (code lives in the function's directory). */
#define HKSD_FUNCTION_RECORD_MAX (256 * 1024)

typedef struct hksd_function_store {
    char dir[PATH_MAX]; /* <state_dir>/functions */
} hksd_function_store;

bool hksd_function_id_valid(const char *id);
/* A new random id (getrandom). */
int hksd_function_id_new(char out[HKSD_FUNCTION_ID_LEN + 1], hks_error *err);

/* Create <state_dir>/functions (0700) if needed and remove the temporary files of writes that a
 * crash interrupted. */
int hksd_function_store_open(hksd_function_store *store, const char *state_dir, hks_error *err);

/* Check the record's fields (above) and write it as <dir>/<id>.json, replacing an older version
 * atomically. */
int hksd_function_store_put(const hksd_function_store *store, json_t *record, hks_error *err);

/* The record of id (a new reference), or NULL with err (errnum ENOENT when there is none). A file
 * that is not a valid record, or whose id is not its name, is an error (errnum EINVAL). */
json_t *hksd_function_store_get(const hksd_function_store *store, const char *id, hks_error *err);

/* Remove id's record; errnum ENOENT when there is none. */
int hksd_function_store_remove(const hksd_function_store *store, const char *id, hks_error *err);

/* Every valid record, as a JSON array sorted by id (a new reference). A record that cannot be
 * read back (torn by a disk fault, edited by hand) is renamed to <id>.json.corrupt, kept for the
 * operator and counted in *quarantined; files that are not records are left alone. */
json_t *hksd_function_store_list(const hksd_function_store *store, size_t *quarantined,
                                 hks_error *err);

#endif
