/* tests/fuzz/aws_parse.c: libFuzzer target over the parsers of AWS answers (src/aws/aws_parse.c):
 * STS XML, the ECS credentials JSON, GetBootstrapBrokers JSON and AWS times. The answers come
 * from the network; whatever they hold, parsing must end in credentials or an error message,
 * never a crash, a leak or undefined behaviour.
 *
 *   make fuzz-aws_parse
 *   build/fuzz/aws_parse -max_total_time=180 <scratch dir> tests/fuzz/aws_parse/
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512], *brokers = NULL;
    struct aws_credentials c;
    if (aws_parse_sts((const char *)data, size, &c, err, sizeof err) == 0) aws_credentials_clear(&c);
    if (aws_parse_ecs((const char *)data, size, &c, err, sizeof err) == 0) aws_credentials_clear(&c);
    if (aws_parse_bootstrap_brokers((const char *)data, size, &brokers, err, sizeof err) == 0) free(brokers);
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
        (void)aws_parse_time(s);
        free(s);
    }
    return 0;
}
