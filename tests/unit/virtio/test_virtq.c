/* Guest memory translation and split-virtqueue walking, including malicious rings: loops,
 * addresses outside or wrapping around guest memory, oversized chains, bad indirect tables and
 * an avail index that jumps by more than the queue size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "mv/guest_mem.h"
#include "mv/virtq.h"

#define QSZ 16

struct fixture {
    struct hx_ram ram;
    struct hx_queue q;
    struct mv_virtq vq;
    struct mv_virtq_chain chain;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    hx_ram_init(&f.ram, 1 << 20);
    hx_queue_init(&f.q, &f.ram, QSZ);
    assert_int_equal(
        mv_virtq_init(&f.vq, &f.ram.mem, QSZ, f.q.desc_gpa, f.q.avail_gpa, f.q.used_gpa, false), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    hx_ram_fini(&f->ram);
    return 0;
}

static void test_guest_mem_bounds(void **state)
{
    static uint8_t a[4096], b[4096];
    struct mv_guest_mem m;
    mv_guest_mem_init(&m);
    assert_int_equal(mv_guest_mem_add(&m, 0x1000, sizeof(a), a), 0);
    assert_int_equal(mv_guest_mem_add(&m, 0x2000, sizeof(b), b), 0); /* adjacent */
    assert_int_equal(mv_guest_mem_add(&m, 0x2800, 16, b), -EINVAL);  /* overlap */
    assert_int_equal(mv_guest_mem_add(&m, 0x0800, 0x1000, b), -EINVAL);
    assert_int_equal(mv_guest_mem_add(&m, UINT64_MAX - 10, 100, b), -EINVAL); /* wraps */
    assert_int_equal(mv_guest_mem_add(&m, 0x9000, 0, b), -EINVAL);
    assert_int_equal(m.nr_regions, 2);

    assert_ptr_equal(mv_guest_mem_ptr(&m, 0x1000, 4096), a);
    assert_ptr_equal(mv_guest_mem_ptr(&m, 0x1fff, 1), a + 4095);
    assert_ptr_equal(mv_guest_mem_ptr(&m, 0x2000, 1), b);
    assert_null(mv_guest_mem_ptr(&m, 0x1fff, 2));          /* spans two regions */
    assert_null(mv_guest_mem_ptr(&m, 0x0fff, 1));          /* below */
    assert_null(mv_guest_mem_ptr(&m, 0x3000, 1));          /* one past the end */
    assert_null(mv_guest_mem_ptr(&m, 0x1000, 4097));       /* too long */
    assert_null(mv_guest_mem_ptr(&m, 0x1800, UINT64_MAX)); /* gpa + len wraps */
    assert_null(mv_guest_mem_ptr(&m, UINT64_MAX, 2));
    assert_ptr_equal(mv_guest_mem_ptr(&m, 0x1800, 0), a + 0x800);

    uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
    assert_int_equal(mv_guest_mem_write(&m, 0x2ff8, buf, 8), 0);
    assert_int_equal(mv_guest_mem_read(&m, 0x2ff8, out, 8), 0);
    assert_memory_equal(buf, out, 8);
    assert_int_equal(mv_guest_mem_write(&m, 0x2ffc, buf, 8), -EFAULT);
    assert_int_equal(b[4095 - 3], 5); /* a failed write changed nothing */
}

static void test_init_rejects_bad_rings(void **state)
{
    struct fixture *f = *state;
    struct mv_virtq vq;
    assert_int_equal(
        mv_virtq_init(&vq, &f->ram.mem, 0, f->q.desc_gpa, f->q.avail_gpa, f->q.used_gpa, false),
        -EINVAL);
    assert_int_equal(
        mv_virtq_init(&vq, &f->ram.mem, 12, f->q.desc_gpa, f->q.avail_gpa, f->q.used_gpa, false),
        -EINVAL);
    assert_int_equal(
        mv_virtq_init(&vq, &f->ram.mem, 2048, f->q.desc_gpa, f->q.avail_gpa, f->q.used_gpa, false),
        -EINVAL);
    assert_int_equal(mv_virtq_init(&vq, &f->ram.mem, QSZ, f->q.desc_gpa + 8, f->q.avail_gpa,
                                   f->q.used_gpa, false),
                     -EINVAL);
    /* used ring hanging over the end of guest RAM */
    uint64_t end = f->ram.gpa + f->ram.size;
    assert_int_equal(
        mv_virtq_init(&vq, &f->ram.mem, QSZ, f->q.desc_gpa, f->q.avail_gpa, end - 64, false),
        -EFAULT);
    assert_int_equal(mv_virtq_init(&vq, &f->ram.mem, QSZ, 0xfffffffffffffff0ull, f->q.avail_gpa,
                                   f->q.used_gpa, false),
                     -EFAULT);
    assert_true(vq.broken);
    assert_int_equal(mv_virtq_pop(&vq, &f->chain), -EIO);
}

static void test_pop_push_simple(void **state)
{
    struct fixture *f = *state;
    uint64_t hdr = hx_alloc(&f->ram, 16, 8), data = hx_alloc(&f->ram, 512, 512),
             st = hx_alloc(&f->ram, 1, 1);
    struct hx_buf bufs[] = {{hdr, 16, false}, {data, 512, true}, {st, 1, true}};
    uint16_t head = hx_chain(&f->q, bufs, 3);
    assert_int_equal(mv_virtq_pop(&f->vq, &f->chain), 0); /* nothing published yet */
    hx_publish(&f->q, head);
    assert_true(mv_virtq_has_work(&f->vq));
    assert_int_equal(mv_virtq_pop(&f->vq, &f->chain), 1);
    assert_int_equal(f->chain.head, head);
    assert_int_equal(f->chain.n_out, 1);
    assert_int_equal(f->chain.n_in, 2);
    assert_int_equal(f->chain.out_bytes, 16);
    assert_int_equal(f->chain.in_bytes, 513);
    assert_ptr_equal(f->chain.iov[1].iov_base, hx_ptr(&f->ram, data));
    assert_false(mv_virtq_has_work(&f->vq));

    /* copy helpers walk segments with offsets */
    memcpy(hx_ptr(&f->ram, hdr), "0123456789abcdef", 16);
    char out[8] = {0};
    assert_int_equal(mv_virtq_chain_copy_out(&f->chain, 10, out, 8), 6);
    assert_memory_equal(out, "abcdef", 6);
    uint8_t src[4] = {9, 8, 7, 6};
    assert_int_equal(mv_virtq_chain_copy_in(&f->chain, 510, src, 4), 3);
    assert_int_equal(*(uint8_t *)hx_ptr(&f->ram, st), 7);

    mv_virtq_push(&f->vq, head, 513);
    uint32_t id, len;
    assert_true(hx_used_next(&f->q, &id, &len));
    assert_int_equal(id, head);
    assert_int_equal(len, 513);
    assert_true(mv_virtq_should_interrupt(&f->vq));
    struct mv_virtq_avail *av = hx_ptr(&f->ram, f->q.avail_gpa);
    av->flags = MV_VIRTQ_AVAIL_F_NO_INTERRUPT;
    assert_false(mv_virtq_should_interrupt(&f->vq));
}

static void expect_broken(struct fixture *f, const char *what)
{
    assert_int_equal(mv_virtq_pop(&f->vq, &f->chain), -EIO);
    assert_true(f->vq.broken);
    assert_non_null(f->vq.error);
    assert_non_null(strstr(f->vq.error, what));
    /* stays broken, does not advance */
    assert_int_equal(mv_virtq_pop(&f->vq, &f->chain), -EIO);
    assert_int_equal(f->vq.last_avail_idx, 0);
}

static void test_loop(void **state)
{
    struct fixture *f = *state;
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    hx_set_desc(&f->q, 0, b, 8, MV_VIRTQ_DESC_F_NEXT, 1);
    hx_set_desc(&f->q, 1, b, 8, MV_VIRTQ_DESC_F_NEXT, 2);
    hx_set_desc(&f->q, 2, b, 8, MV_VIRTQ_DESC_F_NEXT, 0);
    hx_publish(&f->q, 0);
    expect_broken(f, "loop");
}

static void test_self_loop(void **state)
{
    struct fixture *f = *state;
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    hx_set_desc(&f->q, 5, b, 8, MV_VIRTQ_DESC_F_NEXT, 5);
    hx_publish(&f->q, 5);
    expect_broken(f, "loop");
}

static void test_full_length_chain_ok(void **state)
{
    struct fixture *f = *state;
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    for (uint16_t i = 0; i < QSZ; i++)
        hx_set_desc(&f->q, i, b, 4, i + 1 < QSZ ? MV_VIRTQ_DESC_F_NEXT : 0, i + 1);
    hx_publish(&f->q, 0);
    assert_int_equal(mv_virtq_pop(&f->vq, &f->chain), 1);
    assert_int_equal(f->chain.n_out, QSZ);
}

static void test_address_out_of_range(void **state)
{
    struct fixture *f = *state;
    hx_set_desc(&f->q, 0, f->ram.gpa + f->ram.size - 4, 8, 0, 0); /* runs past the end */
    hx_publish(&f->q, 0);
    expect_broken(f, "outside guest memory");
}

static void test_address_wraps(void **state)
{
    struct fixture *f = *state;
    hx_set_desc(&f->q, 0, UINT64_MAX - 15, 64, MV_VIRTQ_DESC_F_WRITE, 0);
    hx_publish(&f->q, 0);
    expect_broken(f, "outside guest memory");
}

static void test_address_below_ram(void **state)
{
    struct fixture *f = *state;
    hx_set_desc(&f->q, 0, 0, 16, 0, 0);
    hx_publish(&f->q, 0);
    expect_broken(f, "outside guest memory");
}

static void test_next_out_of_range(void **state)
{
    struct fixture *f = *state;
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    hx_set_desc(&f->q, 0, b, 8, MV_VIRTQ_DESC_F_NEXT, QSZ);
    hx_publish(&f->q, 0);
    expect_broken(f, "next descriptor index");
}

static void test_head_out_of_range(void **state)
{
    struct fixture *f = *state;
    hx_publish(&f->q, 0xffff);
    expect_broken(f, "head descriptor index");
}

static void test_avail_idx_jump(void **state)
{
    struct fixture *f = *state;
    struct mv_virtq_avail *av = hx_ptr(&f->ram, f->q.avail_gpa);
    av->idx = QSZ + 1;
    expect_broken(f, "avail idx");
}

static void test_readable_after_writable(void **state)
{
    struct fixture *f = *state;
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    hx_set_desc(&f->q, 0, b, 8, MV_VIRTQ_DESC_F_NEXT | MV_VIRTQ_DESC_F_WRITE, 1);
    hx_set_desc(&f->q, 1, b, 8, 0, 0);
    hx_publish(&f->q, 0);
    expect_broken(f, "readable buffer after");
}

/* Writes an indirect table of n descriptors at a fresh gpa and points descriptor 0 at it. */
static uint64_t make_indirect(struct fixture *f, unsigned n, uint16_t extra_flags)
{
    uint64_t t = hx_alloc(&f->ram, 16ull * n, 16);
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    struct mv_virtq_desc *d = hx_ptr(&f->ram, t);
    for (unsigned i = 0; i < n; i++) {
        d[i].addr = b;
        d[i].len = 4;
        d[i].flags = i + 1 < n ? MV_VIRTQ_DESC_F_NEXT : MV_VIRTQ_DESC_F_WRITE;
        d[i].next = (uint16_t)(i + 1);
    }
    hx_set_desc(&f->q, 0, t, 16 * n, MV_VIRTQ_DESC_F_INDIRECT | extra_flags, 1);
    hx_publish(&f->q, 0);
    return t;
}

static void test_indirect_ok(void **state)
{
    struct fixture *f = *state;
    make_indirect(f, 40, 0); /* longer than the queue itself: fine for an indirect table */
    assert_int_equal(mv_virtq_pop(&f->vq, &f->chain), 1);
    assert_int_equal(f->chain.n_out, 39);
    assert_int_equal(f->chain.n_in, 1);
}

static void test_indirect_too_many_segments(void **state)
{
    struct fixture *f = *state;
    make_indirect(f, MV_VIRTQ_MAX_SEGS + 1, 0);
    expect_broken(f, "too many segments");
}

static void test_indirect_bad_len(void **state)
{
    struct fixture *f = *state;
    uint64_t t = hx_alloc(&f->ram, 64, 16);
    hx_set_desc(&f->q, 0, t, 24, MV_VIRTQ_DESC_F_INDIRECT, 0);
    hx_publish(&f->q, 0);
    expect_broken(f, "indirect table length");
}

static void test_indirect_huge(void **state)
{
    struct fixture *f = *state;
    hx_set_desc(&f->q, 0, f->ram.gpa, 16 * (MV_VIRTQ_MAX_SIZE + 1), MV_VIRTQ_DESC_F_INDIRECT, 0);
    hx_publish(&f->q, 0);
    expect_broken(f, "indirect table length");
}

static void test_indirect_outside(void **state)
{
    struct fixture *f = *state;
    hx_set_desc(&f->q, 0, f->ram.gpa + f->ram.size - 32, 64, MV_VIRTQ_DESC_F_INDIRECT, 0);
    hx_publish(&f->q, 0);
    expect_broken(f, "indirect table outside");
}

static void test_indirect_nested(void **state)
{
    struct fixture *f = *state;
    uint64_t t = make_indirect(f, 4, 0);
    struct mv_virtq_desc *d = hx_ptr(&f->ram, t);
    d[2].flags = MV_VIRTQ_DESC_F_INDIRECT;
    d[2].addr = t;
    d[2].len = 64;
    expect_broken(f, "nested indirect");
}

static void test_indirect_with_next(void **state)
{
    struct fixture *f = *state;
    make_indirect(f, 4, MV_VIRTQ_DESC_F_NEXT);
    expect_broken(f, "indirect descriptor with NEXT");
}

static void test_indirect_loop(void **state)
{
    struct fixture *f = *state;
    uint64_t t = make_indirect(f, 4, 0);
    struct mv_virtq_desc *d = hx_ptr(&f->ram, t);
    d[3].flags = MV_VIRTQ_DESC_F_NEXT;
    d[3].next = 1;
    expect_broken(f, "loop");
}

static void test_indirect_next_out_of_table(void **state)
{
    struct fixture *f = *state;
    uint64_t t = make_indirect(f, 4, 0);
    struct mv_virtq_desc *d = hx_ptr(&f->ram, t);
    d[3].flags = MV_VIRTQ_DESC_F_NEXT;
    d[3].next = 4;
    expect_broken(f, "next descriptor index");
}

static void test_event_idx(void **state)
{
    struct fixture *f = *state;
    struct mv_virtq vq;
    assert_int_equal(
        mv_virtq_init(&vq, &f->ram.mem, QSZ, f->q.desc_gpa, f->q.avail_gpa, f->q.used_gpa, true),
        0);
    struct mv_virtq_avail *av = hx_ptr(&f->ram, f->q.avail_gpa);
    uint16_t *used_event = &av->ring[QSZ];
    uint64_t b = hx_alloc(&f->ram, 64, 8);
    for (int i = 0; i < 4; i++) {
        hx_set_desc(&f->q, (uint16_t)i, b, 8, 0, 0);
        hx_publish(&f->q, (uint16_t)i);
    }
    struct mv_virtq_chain c;
    *used_event = 2; /* driver: interrupt me once used idx passes 2 */
    assert_int_equal(mv_virtq_pop(&vq, &c), 1);
    mv_virtq_push(&vq, c.head, 0);
    assert_true(mv_virtq_should_interrupt(&vq)); /* first interrupt always goes */
    assert_int_equal(mv_virtq_pop(&vq, &c), 1);
    mv_virtq_push(&vq, c.head, 0); /* used idx 2: event 2 not passed */
    assert_false(mv_virtq_should_interrupt(&vq));
    assert_int_equal(mv_virtq_pop(&vq, &c), 1);
    mv_virtq_push(&vq, c.head, 0); /* used idx 3: passed event 2 */
    assert_true(mv_virtq_should_interrupt(&vq));
    /* the device published avail_event = what it consumed */
    struct mv_virtq_used *u = hx_ptr(&f->ram, f->q.used_gpa);
    uint16_t avail_event;
    memcpy(&avail_event, &u->ring[QSZ], sizeof(avail_event));
    assert_int_equal(avail_event, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guest_mem_bounds),
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_rings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pop_push_simple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_length_chain_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_below_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_avail_idx_jump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readable_after_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_too_many_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_bad_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_huge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_with_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_next_out_of_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
