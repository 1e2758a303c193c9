// A Logger that keeps its lines (for assertions and failure reasons) and prints nothing.
import type { Logger } from "@vmctl/core/contract";

export interface LogLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly message: string;
  readonly fields?: Record<string, unknown>;
}

export class MemoryLogger implements Logger {
  readonly lines: LogLine[] = [];

  debug(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: "debug", message, ...(fields ? { fields } : {}) });
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: "info", message, ...(fields ? { fields } : {}) });
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: "warn", message, ...(fields ? { fields } : {}) });
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: "error", message, ...(fields ? { fields } : {}) });
  }
}
