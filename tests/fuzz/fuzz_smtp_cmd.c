/*
 * fuzz_smtp_cmd - libFuzzer target for the SMTP command parser
 */
#include <stdint.h>
#include <string.h>

#include "smtp_cmd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_limits strict = smtp_limits_default;
	struct smtp_cmd cmd;
	struct reply r;

	(void)smtp_cmd_parse((const char *)data, size, &smtp_limits_default,
	    &cmd, &r);
	strict.strict = true;
	strict.line_max = 512;
	(void)smtp_cmd_parse((const char *)data, size, &strict, &cmd, &r);
	return 0;
}
