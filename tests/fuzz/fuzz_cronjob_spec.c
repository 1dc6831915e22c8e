/* libFuzzer target: a CronJob definition as a client sends it (create), and a change of one
 * (update over the definition the first half made). Whatever is accepted must be canonical: parsed
 * again it is accepted unchanged, with the same schedule, and every field the scheduler reads is
 * there with its type. */
#include "daemon/cronjobs.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_canonical(const cj_spec *spec)
{
    char field[64];
    hks_error err = {0};
    cj_spec again;
    if (cj_spec_parse(spec->json, NULL, 300, &again, field, &err) < 0)
        __builtin_trap();
    if (!json_equal(again.json, spec->json) ||
        strcmp(again.schedule.text, spec->schedule.text) != 0 || again.policy != spec->policy ||
        again.deadline_s != spec->deadline_s || again.is_task != spec->is_task ||
        strcmp(again.target_function, spec->target_function) != 0)
        __builtin_trap();
    if (!json_is_string(json_object_get(spec->json, "timezone")) ||
        spec->keep_succeeded > CJ_HISTORY_MAX || spec->keep_failed > CJ_HISTORY_MAX)
        __builtin_trap();
    cj_spec_release(&again);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    /* "<create JSON>\n--\n<update JSON>" or just a create */
    const unsigned char *sep = NULL;
    for (size_t i = 0; i + 4 <= size && !sep; i++) {
        if (memcmp(data + i, "\n--\n", 4) == 0)
            sep = data + i;
    }
    size_t first_len = sep ? (size_t)(sep - data) : size;
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, first_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return 0;
    char field[64];
    hks_error err = {0};
    cj_spec spec;
    if (cj_spec_parse(body, NULL, 300, &spec, field, &err) == 0) {
        check_canonical(&spec);
        json_t *change = sep ? json_loadb((const char *)sep + 4, size - first_len - 4,
                                          JSON_REJECT_DUPLICATES, &jerr)
                             : NULL;
        cj_spec updated;
        if (change && cj_spec_parse(change, spec.json, 300, &updated, field, &err) == 0) {
            check_canonical(&updated);
            if (!json_equal(json_object_get(updated.json, "name"),
                            json_object_get(spec.json, "name")))
                __builtin_trap();
            cj_spec_release(&updated);
        } else if (change && !field[0]) {
            __builtin_trap(); /* every refusal names the field */
        }
        json_decref(change);
        cj_spec_release(&spec);
    } else if (!field[0]) {
        __builtin_trap();
    }
    json_decref(body);
    return 0;
}
