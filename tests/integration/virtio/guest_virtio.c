/* Minimal virtio-mmio driver for bare-metal test guests (see guest_virtio.h). */
#include "guest_virtio.h"

#include "guest.h"

#define R_MAGIC        0x000
#define R_VERSION      0x004
#define R_DEVICE_ID    0x008
#define R_DEV_FEAT     0x010
#define R_DEV_FEAT_SEL 0x014
#define R_DRV_FEAT     0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QUEUE_SEL    0x030
#define R_QUEUE_MAX    0x034
#define R_QUEUE_NUM    0x038
#define R_QUEUE_READY  0x044
#define R_QUEUE_NOTIFY 0x050
#define R_ISR          0x060
#define R_ISR_ACK      0x064
#define R_STATUS       0x070
#define R_DESC_LO      0x080
#define R_DESC_HI      0x084
#define R_AVAIL_LO     0x090
#define R_AVAIL_HI     0x094
#define R_USED_LO      0x0a0
#define R_USED_HI      0x0a4
#define R_CONFIG       0x100

#define S_ACK         1u
#define S_DRIVER      2u
#define S_DRIVER_OK   4u
#define S_FEATURES_OK 8u

#define F_VERSION_1 (1ull << 32)

#define GV_SLOTS 4

/* Ring memory: one page for descriptors + avail, one for used, per slot. */
static uint8_t ring_mem[GV_SLOTS][2][4096] __attribute__((aligned(4096)));
static struct gv_device *irq_devs[GV_MAX_DEVICES];

uint32_t gv_read32(struct gv_device *dev, uint32_t off)
{
    return mmio_read32(dev->base + off);
}

void gv_write32(struct gv_device *dev, uint32_t off, uint32_t v)
{
    mmio_write32(dev->base + off, v);
}

uint8_t gv_config8(struct gv_device *dev, uint32_t off)
{
    return mmio_read8(dev->base + R_CONFIG + off);
}

uint32_t gv_config32(struct gv_device *dev, uint32_t off)
{
    return mmio_read32(dev->base + R_CONFIG + off);
}

uint64_t gv_config64(struct gv_device *dev, uint32_t off)
{
    /* two 32-bit halves, as drivers do on MMIO */
    return gv_config32(dev, off) | ((uint64_t)gv_config32(dev, off + 4) << 32);
}

uint32_t gv_status(struct gv_device *dev)
{
    return gv_read32(dev, R_STATUS);
}

static uint64_t parse_hex(const char **pp)
{
    const char *p = *pp;
    uint64_t v = 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    for (;; p++) {
        char c = *p;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uint64_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v = v * 16 + (uint64_t)(c - 'A' + 10);
        else
            break;
    }
    *pp = p;
    return v;
}

static uint64_t parse_dec(const char **pp)
{
    const char *p = *pp;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    *pp = p;
    return v;
}

unsigned gv_discover(struct gv_device *devs, unsigned max)
{
    static const char key[] = "virtio_mmio.device=";
    const char *p = guest_cmdline();
    unsigned n = 0;
    while (n < max && (p = strstr(p, key)) != NULL) {
        p += sizeof(key) - 1;
        parse_hex(&p); /* window size */
        if (*p++ != '@')
            continue;
        uint64_t base = parse_hex(&p);
        if (*p++ != ':')
            continue;
        uint32_t gsi = (uint32_t)parse_dec(&p);
        struct gv_device *d = &devs[n];
        memset(d, 0, sizeof(*d));
        d->base = base;
        d->gsi = gsi;
        if (gv_read32(d, R_MAGIC) != 0x74726976 || gv_read32(d, R_VERSION) != 2) {
            guest_printf("virtio: no modern device at 0x%llx\n", (unsigned long long)base);
            continue;
        }
        d->device_id = gv_read32(d, R_DEVICE_ID);
        guest_printf("virtio: device %u at 0x%llx gsi %u\n", d->device_id, (unsigned long long)base,
                     gsi);
        n++;
    }
    return n;
}

struct gv_device *gv_find(struct gv_device *devs, unsigned n, uint32_t device_id)
{
    for (unsigned i = 0; i < n; i++)
        if (devs[i].device_id == device_id)
            return &devs[i];
    guest_printf("virtio: no device with id %u on the command line\n", device_id);
    return NULL;
}

bool gv_init(struct gv_device *dev, uint64_t want)
{
    gv_write32(dev, R_STATUS, 0);
    gv_write32(dev, R_STATUS, S_ACK);
    gv_write32(dev, R_STATUS, S_ACK | S_DRIVER);
    uint64_t offered = 0;
    for (uint32_t sel = 0; sel < 2; sel++) {
        gv_write32(dev, R_DEV_FEAT_SEL, sel);
        offered |= (uint64_t)gv_read32(dev, R_DEV_FEAT) << (32 * sel);
    }
    if (!(offered & F_VERSION_1))
        return false;
    uint64_t f = offered & (want | F_VERSION_1);
    for (uint32_t sel = 0; sel < 2; sel++) {
        gv_write32(dev, R_DRV_FEAT_SEL, sel);
        gv_write32(dev, R_DRV_FEAT, (uint32_t)(f >> (32 * sel)));
    }
    gv_write32(dev, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    return (gv_status(dev) & S_FEATURES_OK) != 0;
}

bool gv_queue_setup(struct gv_device *dev, struct gv_queue *vq, uint16_t q, unsigned slot)
{
    if (slot >= GV_SLOTS)
        return false;
    gv_write32(dev, R_QUEUE_SEL, q);
    if (gv_read32(dev, R_QUEUE_READY) != 0 || gv_read32(dev, R_QUEUE_MAX) < GV_QSZ)
        return false;
    memset(vq, 0, sizeof(*vq));
    memset(ring_mem[slot], 0, sizeof(ring_mem[slot]));
    vq->index = q;
    vq->size = GV_QSZ;
    vq->desc = (struct gv_desc *)ring_mem[slot][0];
    vq->avail = (volatile uint16_t *)(ring_mem[slot][0] + 16 * GV_QSZ);
    vq->used = ring_mem[slot][1];
    uint64_t desc = (uint64_t)(uintptr_t)vq->desc, avail = (uint64_t)(uintptr_t)vq->avail,
             used = (uint64_t)(uintptr_t)vq->used;
    gv_write32(dev, R_QUEUE_NUM, GV_QSZ);
    gv_write32(dev, R_DESC_LO, (uint32_t)desc);
    gv_write32(dev, R_DESC_HI, (uint32_t)(desc >> 32));
    gv_write32(dev, R_AVAIL_LO, (uint32_t)avail);
    gv_write32(dev, R_AVAIL_HI, (uint32_t)(avail >> 32));
    gv_write32(dev, R_USED_LO, (uint32_t)used);
    gv_write32(dev, R_USED_HI, (uint32_t)(used >> 32));
    gv_write32(dev, R_QUEUE_READY, 1);
    return gv_read32(dev, R_QUEUE_READY) == 1;
}

static void gv_irq(const struct guest_irq_frame *frame)
{
    struct gv_device *dev = irq_devs[(frame->vector - GV_IRQ_VECTOR) % GV_MAX_DEVICES];
    if (dev != NULL) {
        uint32_t isr = gv_read32(dev, R_ISR);
        gv_write32(dev, R_ISR_ACK, isr);
        dev->irqs++;
    }
    guest_lapic_eoi();
}

bool gv_driver_ok(struct gv_device *dev)
{
    unsigned slot = 0;
    while (slot < GV_MAX_DEVICES && irq_devs[slot] != NULL && irq_devs[slot] != dev)
        slot++;
    if (slot == GV_MAX_DEVICES)
        return false;
    irq_devs[slot] = dev;
    /* mask the 8259s: the in-kernel PIC would also deliver the GSI (as vector base + irq) */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    guest_lapic_enable();
    guest_set_irq_handler((uint8_t)(GV_IRQ_VECTOR + slot), gv_irq);
    guest_ioapic_route(dev->gsi, (uint8_t)(GV_IRQ_VECTOR + slot), (uint8_t)guest_lapic_id(), false);
    gv_write32(dev, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return (gv_status(dev) & (S_DRIVER_OK | 64u)) == S_DRIVER_OK;
}

uint16_t gv_submit(struct gv_queue *vq, const struct gv_buf *bufs, unsigned n)
{
    uint16_t head = vq->next_desc;
    for (unsigned i = 0; i < n; i++) {
        uint16_t d = (uint16_t)((head + i) % vq->size);
        vq->desc[d].addr = (uint64_t)(uintptr_t)bufs[i].addr;
        vq->desc[d].len = bufs[i].len;
        vq->desc[d].flags = (uint16_t)((bufs[i].writable ? 2 : 0) | (i + 1 < n ? 1 : 0));
        vq->desc[d].next = (uint16_t)((d + 1) % vq->size);
    }
    vq->next_desc = (uint16_t)((head + n) % vq->size);
    vq->avail[2 + (vq->avail_idx % vq->size)] = head;
    guest_barrier(); /* descriptors and ring entry before the index */
    vq->avail_idx++;
    vq->avail[1] = vq->avail_idx;
    guest_barrier();
    return head;
}

void gv_kick(struct gv_device *dev, struct gv_queue *vq)
{
    gv_write32(dev, R_QUEUE_NOTIFY, vq->index);
}

uint16_t gv_wait_used(struct gv_device *dev, struct gv_queue *vq, uint32_t *len)
{
    volatile uint16_t *used_idx = (volatile uint16_t *)(vq->used + 2);
    for (;;) {
        irq_disable();
        if (*used_idx != vq->used_seen)
            break;
        guest_wait_for_interrupt(); /* sti; hlt: the device's interrupt wakes us */
    }
    irq_enable();
    guest_barrier();
    volatile uint32_t *elem = (volatile uint32_t *)(vq->used + 4 + 8 * (vq->used_seen % vq->size));
    uint16_t id = (uint16_t)elem[0];
    if (len != NULL)
        *len = elem[1];
    vq->used_seen++;
    return id;
}

uint8_t gv_blk_request(struct gv_device *dev, struct gv_queue *vq, uint32_t type, uint64_t sector,
                       void *data, uint32_t len)
{
    /* Static: guest requests are synchronous, and the header and status must sit in guest RAM
     * the device can reach (the stack would do too, but this keeps descriptors stable). */
    static struct {
        uint32_t type;
        uint32_t reserved;
        uint64_t sector;
    } hdr;
    static uint8_t status;
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status = 0xee;
    struct gv_buf bufs[3];
    unsigned n = 0;
    bufs[n++] = (struct gv_buf){&hdr, sizeof(hdr), false};
    if (len > 0)
        bufs[n++] = (struct gv_buf){data, len, type != GV_BLK_T_OUT};
    bufs[n++] = (struct gv_buf){&status, 1, true};
    uint16_t head = gv_submit(vq, bufs, n);
    gv_kick(dev, vq);
    uint16_t id = gv_wait_used(dev, vq, NULL);
    return id == head ? status : 0xff;
}
