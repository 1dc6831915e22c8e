#include "internal.h"
int sbx_spawner_cli(int argc, char **argv);
int sbx_spawner_cli(int argc, char **argv) { (void)argc; (void)argv; return 2; }
