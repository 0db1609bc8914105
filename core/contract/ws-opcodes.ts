/** WebSocket frame opcodes (RFC 6455 §5.2), for the frame reader, the writer and the two ends using them. */
export const opContinuation = 0x0;
export const opText = 0x1;
export const opBinary = 0x2;
export const opClose = 0x8;
export const opPing = 0x9;
export const opPong = 0xa;
