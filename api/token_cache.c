/* Tokens already verified: an agent sends the same short-lived token with every request, and a
 * function URL is invoked thousands of times a second, so the signature check and claim parsing
 * are done once per token, not per request. Only successful verifications are kept; a hit is
 * the exact token (compared whole, not by hash) and is checked against the clock again, so an
 * expired token is refused as before. New keys (SIGHUP) empty the cache. */
#include "internal.h"

#include <string.h>

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void api_token_cache_init(token_cache *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
}

void api_token_cache_clear(token_cache *c)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < TOKEN_CACHE_SLOTS; i++) {
        free(c->slots[i].token);
        c->slots[i].token = NULL;
    }
    pthread_mutex_unlock(&c->lock);
}

void api_token_cache_destroy(token_cache *c)
{
    api_token_cache_clear(c);
    pthread_mutex_destroy(&c->lock);
}

bool api_token_cache_get(token_cache *c, const char *token, size_t len, time_t now, long leeway,
                         hks_jwt_claims *out)
{
    token_slot *slot = &c->slots[fnv1a(token, len) % TOKEN_CACHE_SLOTS];
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    if (slot->token && slot->len == len && memcmp(slot->token, token, len) == 0 &&
        now < slot->claims.exp + leeway && now + leeway >= slot->claims.nbf) {
        *out = slot->claims;
        hit = true;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void api_token_cache_put(token_cache *c, const char *token, size_t len,
                         const hks_jwt_claims *claims)
{
    char *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, token, len);
    token_slot *slot = &c->slots[fnv1a(token, len) % TOKEN_CACHE_SLOTS];
    pthread_mutex_lock(&c->lock);
    free(slot->token);
    slot->token = copy;
    slot->len = len;
    slot->claims = *claims;
    pthread_mutex_unlock(&c->lock);
}
