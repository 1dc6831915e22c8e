/* A reader for the subset of YAML that func.yaml files use (what `kn func create` and its
 * editors write), into a JSON tree: block mappings and sequences (also "key:\n- item" at the
 * key's indentation), plain, single- and double-quoted scalars, literal (|) and folded (>) block
 * scalars, one-line flow collections ([a, b], {k: v}), comments, "---" and tags (ignored).
 * Anchors, aliases, complex keys and multi-line quoted or flow scalars are refused with the line
 * number. Every scalar is a JSON string; an empty value, "~" and "null" are JSON null. */
#ifndef HKS_CLI_YAML_H
#define HKS_CLI_YAML_H

#include "cli/util.h"

/* Parse text (len bytes) into *out (an object, array, string or null). Errors say
 * "line N: what". */
int cli_yaml_parse(const char *text, size_t len, json_t **out, cli_error *err);

#endif
