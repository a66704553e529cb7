/*
 * fuzz_queue - libFuzzer target for the queue file reader
 */
#include <stdint.h>
#include <string.h>

#include "queue.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_env *env = queue_env_new();
	const char *why;

	(void)queue_parse(data, size, env, &why);
	queue_env_free(&env);
	return 0;
}
