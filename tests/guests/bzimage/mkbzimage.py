#!/usr/bin/env python3
"""Wraps the test guest's flat protected-mode image in a bzImage (see ../ABI.md, "bzImage").

usage: mkbzimage.py GUEST_ELF FLAT_BIN OUT

GUEST_ELF is the bzImage variant of the guest (linked with bzimage/head.S first, at
1 MiB); FLAT_BIN is `objcopy -O binary` of it. The output is a boot sector and one
setup sector carrying a Linux setup header (boot protocol 2.12), followed by FLAT_BIN
unchanged: the protected-mode image, loaded at code32_start (1 MiB) and entered in
64-bit mode at +0x200. The ELF's program headers give init_size (image + bss) and are
checked against the flat binary.
"""
import struct
import sys

LOAD_ADDR = 0x100000          # code32_start and pref_address: where the guest is linked
ENTRY_64 = LOAD_ADDR + 0x200  # the 64-bit entry of the Linux 64-bit boot protocol
SETUP_SECTS = 1               # setup sectors after the boot sector
PROTOCOL = 0x020C             # 2.12: the first version with xloadflags
LOADED_HIGH = 0x01            # loadflags: protected-mode code goes at 0x100000
XLF_KERNEL_64 = 0x01          # xloadflags: has the 64-bit entry at +0x200
KERNEL_ALIGNMENT = 0x100000   # the load address (1 MiB) is aligned to this
CMDLINE_SIZE = 4095           # longest command line the guest reads, NUL excluded
REAL_MODE_STUB = 0x280        # where the jump at 0x200 lands: cli; hlt; jmp .
VERSION_STRING = 0x2a0        # kernel_version points here (offset - 0x200)


def fail(msg):
    sys.exit(f"mkbzimage.py: {msg}")


def load_extent(elf):
    """(lowest p_paddr, end of file bytes, end of memory) over the PT_LOAD segments."""
    if elf[:5] != b"\x7fELF\x02":
        fail("not an ELF64 file")
    entry, phoff = struct.unpack_from("<QQ", elf, 0x18)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    loads = []
    for i in range(phnum):
        p_type, _, _, _, paddr, filesz, memsz = struct.unpack_from("<IIQQQQQ", elf, phoff + i * phentsize)
        if p_type == 1 and memsz:
            loads.append((paddr, filesz, memsz))
    if not loads:
        fail("no PT_LOAD segments")
    base = min(p for p, _, _ in loads)
    file_end = max(p + f for p, f, _ in loads)
    mem_end = max(p + m for p, _, m in loads)
    return entry, base, file_end, mem_end


def main():
    if len(sys.argv) != 4:
        fail("usage: mkbzimage.py GUEST_ELF FLAT_BIN OUT")
    elf = open(sys.argv[1], "rb").read()
    image = open(sys.argv[2], "rb").read()
    entry, base, file_end, mem_end = load_extent(elf)
    if base != LOAD_ADDR:
        fail(f"guest linked at {base:#x}, not {LOAD_ADDR:#x}")
    if entry != ENTRY_64:
        fail(f"64-bit entry _start is at {entry:#x}, not load address + 0x200 ({ENTRY_64:#x})")
    if len(image) != file_end - base:
        fail(f"flat image is {len(image)} bytes, the ELF says {file_end - base}")
    init_size = (mem_end - base + 0xFFF) & ~0xFFF  # linear memory the guest needs from load

    setup = bytearray((1 + SETUP_SECTS) * 512)
    # Boot sector: not bootable from a BIOS; a real-mode entry would halt.
    msg = b"vmctl test guest: boot with a Linux boot-protocol loader\0"
    setup[0:3] = b"\xfa\xf4\xeb"  # cli; hlt; jmp (back to hlt)
    setup[3] = 0xFD
    setup[4 : 4 + len(msg)] = msg

    def put(fmt, off, *vals):
        struct.pack_into("<" + fmt, setup, off, *vals)

    put("B", 0x1F1, SETUP_SECTS)
    put("H", 0x1F2, 0)                            # root_flags
    put("I", 0x1F4, (len(image) + 15) // 16)      # syssize, 16-byte paragraphs
    put("H", 0x1FA, 0xFFFF)                       # vid_mode: normal
    put("H", 0x1FE, 0xAA55)                       # boot_flag
    put("BB", 0x200, 0xEB, REAL_MODE_STUB - 0x202)  # jump: short jmp to the real-mode stub
    setup[0x202:0x206] = b"HdrS"
    put("H", 0x206, PROTOCOL)
    put("H", 0x20C, 0x1000)                       # start_sys_seg (obsolete)
    put("H", 0x20E, VERSION_STRING - 0x200)       # kernel_version
    put("B", 0x211, LOADED_HIGH)                  # loadflags
    put("H", 0x212, 0x8000)                       # setup_move_size
    put("I", 0x214, LOAD_ADDR)                    # code32_start
    put("I", 0x22C, 0x7FFFFFFF)                   # initrd_addr_max
    put("I", 0x230, KERNEL_ALIGNMENT)
    put("B", 0x234, 0)                            # relocatable_kernel: no, linked at 1 MiB
    put("B", 0x235, KERNEL_ALIGNMENT.bit_length() - 1)  # min_alignment (log2)
    put("H", 0x236, XLF_KERNEL_64)                # xloadflags
    put("I", 0x238, CMDLINE_SIZE)
    put("Q", 0x258, LOAD_ADDR)                    # pref_address
    put("I", 0x260, init_size)
    setup[REAL_MODE_STUB : REAL_MODE_STUB + 4] = b"\xfa\xf4\xeb\xfd"
    version = b"vmctl-test-guest\0"
    setup[VERSION_STRING : VERSION_STRING + len(version)] = version

    with open(sys.argv[3], "wb") as out:
        out.write(setup)
        out.write(image)


main()
