/* The audit log: JSON Lines, one record per state change and per execution, each written with one
 * write(2) and fdatasync'd, so a record is whole or absent after a crash. (daemon-private) */
#ifndef HKSD_AUDIT_LOG_H
#define HKSD_AUDIT_LOG_H

#include <stdint.h>

#include <jansson.h>

#include "../common/common.h"

typedef struct hksd_audit_log hksd_audit_log;

/* Open (create 0600) the log at path for appending. rotate_bytes: a log reaching this size is
 * renamed path.1 (older ones shift up to path.<keep>, the oldest removed) before the next record;
 * 0: never rotated. */
int hksd_audit_log_open(const char *path, uint64_t rotate_bytes, unsigned keep,
                        hksd_audit_log **out, hks_error *err);
/* Append one record (adds "ts"); thread-safe. */
int hksd_audit_log_append(hksd_audit_log *log, json_t *record, hks_error *err);
void hksd_audit_log_close(hksd_audit_log *log);

#endif
