/* KVM binary stats: the descriptor parser on synthetic blocks (good and malformed), and on the
 * real thing when /dev/kvm is usable. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "mv/vmm_stats.h"

#define NAME_SIZE 48

static size_t make_block(uint8_t *buf, size_t cap)
{
    memset(buf, 0, cap);
    struct kvm_stats_header h = {.name_size = NAME_SIZE, .num_desc = 2};
    h.id_offset = sizeof(h);
    h.desc_offset = sizeof(h) + 16;
    size_t dsz = sizeof(struct kvm_stats_desc) + NAME_SIZE;
    h.data_offset = (uint32_t)(h.desc_offset + 2 * dsz);
    memcpy(buf, &h, sizeof(h));
    struct kvm_stats_desc d = {.flags = KVM_STATS_TYPE_CUMULATIVE, .size = 1, .offset = 0};
    memcpy(buf + h.desc_offset, &d, sizeof(d));
    strcpy((char *)buf + h.desc_offset + sizeof(d), "exits");
    struct kvm_stats_desc d2 = {.flags = KVM_STATS_TYPE_LOG_HIST, .size = 4, .offset = 8};
    memcpy(buf + h.desc_offset + dsz, &d2, sizeof(d2));
    strcpy((char *)buf + h.desc_offset + dsz + sizeof(d2), "halt_wait_hist");
    return h.data_offset;
}

static void test_parse_good(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t len = make_block(buf, sizeof(buf));
    struct mv_kvm_stats st;
    assert_int_equal(mv_kvm_stats_parse(buf, len, &st), 0);
    assert_int_equal(st.nr_descs, 2);
    assert_string_equal(st.descs[0].name, "exits");
    assert_string_equal(st.descs[1].name, "halt_wait_hist");
    assert_int_equal(st.descs[1].size, 4);
    assert_int_equal(st.data_words, 5);
    assert_string_equal(mv_kvm_stat_type_name(st.descs[1].flags), "log_hist");
    mv_kvm_stats_close(&st);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    uint8_t buf[1024];
    struct mv_kvm_stats st;
    size_t len = make_block(buf, sizeof(buf));
    assert_int_equal(mv_kvm_stats_parse(buf, 10, &st), -EINVAL);      /* truncated header */
    assert_int_equal(mv_kvm_stats_parse(buf, len - 1, &st), -EINVAL); /* truncated descs */
    struct kvm_stats_header *h = (void *)buf;
    h->num_desc = 1000000;
    assert_int_equal(mv_kvm_stats_parse(buf, len, &st), -EINVAL);
    make_block(buf, sizeof(buf));
    h->desc_offset = 0xfffffff0u;
    assert_int_equal(mv_kvm_stats_parse(buf, len, &st), -EINVAL);
    make_block(buf, sizeof(buf));
    memset(buf + h->desc_offset + sizeof(struct kvm_stats_desc), 'A', NAME_SIZE); /* no NUL */
    assert_int_equal(mv_kvm_stats_parse(buf, len, &st), -EINVAL);
    make_block(buf, sizeof(buf));
    struct kvm_stats_desc *d = (void *)(buf + h->desc_offset);
    d->offset = 3; /* misaligned value */
    assert_int_equal(mv_kvm_stats_parse(buf, len, &st), -EINVAL);
    make_block(buf, sizeof(buf));
    d->size = 0;
    assert_int_equal(mv_kvm_stats_parse(buf, len, &st), -EINVAL);
}

static void test_real_kvm(void **state)
{
    (void)state;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        skip();
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    assert_true(vm >= 0);
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    assert_true(vcpu >= 0);
    struct mv_kvm_stats st;
    assert_int_equal(mv_kvm_stats_open(vcpu, &st), 0);
    bool found = false;
    for (uint32_t i = 0; i < st.nr_descs; i++)
        if (!strcmp(st.descs[i].name, "exits"))
            found = true;
    assert_true(found);
    uint64_t *v = calloc(st.data_words, 8);
    assert_int_equal(mv_kvm_stats_read(&st, v), 0);
    free(v);
    mv_kvm_stats_close(&st);
    assert_int_equal(mv_kvm_stats_open(vm, &st), 0);
    assert_true(st.nr_descs > 0);
    mv_kvm_stats_close(&st);
    close(vcpu);
    close(vm);
    close(kvm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_real_kvm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
