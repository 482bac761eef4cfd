/*
 * c-bad-abi: the c-sample log driver under another name, with a descriptor
 * claiming ABI major 2. A host speaking major 1 must refuse to load it (and
 * say why) without calling any of its functions.
 */
#define C_SAMPLE_NAME "c-bad-abi"
#define C_SAMPLE_ABI_MAJOR 2
#include "c_sample.c"
