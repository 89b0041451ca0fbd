/*
 * test_model.c - model-level facts that need no file: Grok-1's parameter
 * counts from its shapes (GROK1.md: 315.68 B in all, 83.8 B active per
 * token) and the hyperparameter checks that guard the loader.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "model/model.h"



int main(void) {
    grok_hparams hp = grok_hparams_grok1();
    double all = (double)grok_hparams_n_params(&hp) / 1e9;
    double act = (double)grok_hparams_n_params_active(&hp) / 1e9;
    printf("Grok-1: %.3f B parameters, %.3f B active\n", all, act);
    CHECK(all > 315.65 && all < 315.75, "total %.3f B, GROK1.md says 315.68 B", all);
    CHECK(act > 83.75 && act < 83.85, "active %.3f B, GROK1.md says 83.8 B", act);
    /* per layer: 88.08 M attention, 4.832 B experts */
    char err[GROK_ERR_SIZE];
    CHECK(grok_hparams_validate(&hp, "grok1", err, sizeof err) == 0, "grok1 valid: %s", err);
    grok_hparams bad = hp;
    bad.n_kv_heads = 7;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0 && strstr(err, "head_count_kv"),
          "48 heads over 7 kv heads rejected: %s", err);
    bad = hp;
    bad.n_experts_used = 9;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0 && strstr(err, "expert_used_count"),
          "9 of 8 experts rejected: %s", err);
    bad = hp;
    bad.head_dim = 127;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0 && strstr(err, "even"),
          "odd head dim rejected: %s", err);
    bad = hp;
    bad.d_model = 0;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0 && strstr(err, "d_model"),
          "zero width rejected: %s", err);
    bad = hp;
    bad.norm_eps = 0;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0, "zero eps rejected");
    return check_summary("test_model");
}
