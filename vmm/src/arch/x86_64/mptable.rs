//! The Intel MultiProcessor Specification (1.4) table: how a guest without ACPI finds
//! its processors, the IOAPIC and the ISA interrupt wiring. One processor entry per
//! vCPU (APIC id = vCPU index), one ISA bus, one IOAPIC with its 24 pins wired 1:1 to
//! GSIs, and the local interrupts (LINT0 = ExtINT, LINT1 = NMI).

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{IOAPIC_ADDR, LAPIC_ADDR, MAX_GSI, MPTABLE_ADDR};

const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const SPEC_REV: u8 = 4;
const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const CPU_ENABLED: u8 = 1;
const CPU_BSP: u8 = 2;
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;
const BUS_ID_ISA: u8 = 0;
/// The MP table must fit in the 1 KiB EBDA.
pub const MAX_SIZE: usize = 1024;

/// Why the MP table could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum MptableError {
    #[error("an MP table for {0} vCPUs does not fit in the EBDA")]
    TooManyCpus(u8),
    #[error("writing the MP table: {0}")]
    Write(#[from] vm_memory::GuestMemoryError),
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)).wrapping_neg()
}

/// The IOAPIC's id: after the processors' APIC ids.
fn ioapic_id(cpus: u8) -> u8 {
    cpus + 1
}

/// Builds the floating pointer followed by the configuration table, for placing at
/// `base`.
pub fn build(cpus: u8, base: u64) -> Result<Vec<u8>, MptableError> {
    let mut entries = Vec::new();
    let mut count: u16 = 0;
    for id in 0..cpus {
        entries.extend_from_slice(&[ENTRY_PROCESSOR, id, APIC_VERSION]);
        entries.push(CPU_ENABLED | if id == 0 { CPU_BSP } else { 0 });
        entries.extend_from_slice(&0x600u32.to_le_bytes()); // family 6
        entries.extend_from_slice(&0x201u32.to_le_bytes()); // FPU, APIC
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, BUS_ID_ISA]);
    entries.extend_from_slice(b"ISA   ");
    count += 1;
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id(cpus), IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&(IOAPIC_ADDR as u32).to_le_bytes());
    count += 1;
    for pin in 0..=MAX_GSI as u8 {
        let kind = if pin == 0 { INT_TYPE_EXTINT } else { INT_TYPE_INT };
        entries.extend_from_slice(&[
            ENTRY_IO_INTERRUPT,
            kind,
            0,
            0,
            BUS_ID_ISA,
            pin,
            ioapic_id(cpus),
            pin,
        ]);
        count += 1;
    }
    for (kind, lint) in [(INT_TYPE_EXTINT, 0u8), (INT_TYPE_NMI, 1u8)] {
        entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, kind, 0, 0, BUS_ID_ISA, 0, 0xff, lint]);
        count += 1;
    }

    let table_len = HEADER_LEN + entries.len();
    if FLOATING_LEN + table_len > MAX_SIZE {
        return Err(MptableError::TooManyCpus(cpus));
    }
    let table_addr = base + FLOATING_LEN as u64;

    let mut header = Vec::with_capacity(table_len);
    header.extend_from_slice(b"PCMP");
    header.extend_from_slice(&(table_len as u16).to_le_bytes());
    header.push(SPEC_REV);
    header.push(0); // checksum, below
    header.extend_from_slice(b"VMCTL   ");
    header.extend_from_slice(b"MICROVM     ");
    header.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    header.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    header.extend_from_slice(&count.to_le_bytes());
    header.extend_from_slice(&(LAPIC_ADDR as u32).to_le_bytes());
    header.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    header.extend_from_slice(&entries);
    header[7] = checksum(&header);

    let mut floating = Vec::with_capacity(FLOATING_LEN);
    floating.extend_from_slice(b"_MP_");
    floating.extend_from_slice(&(table_addr as u32).to_le_bytes());
    floating.push(1); // length in 16-byte units
    floating.push(SPEC_REV);
    floating.push(0); // checksum, below
    floating.extend_from_slice(&[0; 5]); // features: configuration table present
    floating[10] = checksum(&floating);

    floating.extend_from_slice(&header);
    Ok(floating)
}

/// Writes the MP table for `cpus` vCPUs at [`MPTABLE_ADDR`].
pub fn write(mem: &GuestMemoryMmap, cpus: u8) -> Result<(), MptableError> {
    let bytes = build(cpus, MPTABLE_ADDR)?;
    mem.write_slice(&bytes, GuestAddress(MPTABLE_ADDR))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROCESSOR_LEN: usize = 20;
    const SHORT_ENTRY_LEN: usize = 8;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    #[test]
    fn floating_pointer_and_table_checksum_to_zero() {
        let t = build(2, MPTABLE_ADDR).unwrap();
        assert_eq!(&t[0..4], b"_MP_");
        assert_eq!(sum(&t[..16]), 0);
        let ptr = u32::from_le_bytes(t[4..8].try_into().unwrap()) as u64;
        assert_eq!(ptr, MPTABLE_ADDR + 16);
        let table = &t[16..];
        assert_eq!(&table[0..4], b"PCMP");
        let len = u16::from_le_bytes([table[4], table[5]]) as usize;
        assert_eq!(len, table.len());
        assert_eq!(sum(table), 0);
    }

    #[test]
    fn one_enabled_processor_entry_per_vcpu_and_one_bsp() {
        let t = build(3, MPTABLE_ADDR).unwrap();
        let table = &t[16..];
        let entries = &table[HEADER_LEN..];
        let mut off = 0;
        let mut cpus = vec![];
        while off < entries.len() {
            match entries[off] {
                ENTRY_PROCESSOR => {
                    cpus.push((entries[off + 1], entries[off + 3]));
                    off += PROCESSOR_LEN;
                }
                _ => off += SHORT_ENTRY_LEN,
            }
        }
        assert_eq!(cpus, vec![(0, 3), (1, 1), (2, 1)]);
    }

    #[test]
    fn the_largest_vm_still_fits_in_the_ebda() {
        assert!(build(32, MPTABLE_ADDR).unwrap().len() <= MAX_SIZE);
        assert!(matches!(
            build(40, MPTABLE_ADDR),
            Err(MptableError::TooManyCpus(40))
        ));
    }
}
