/* A test-only stand-in for Windows' bcryptprimitives.dll, for running Hoist's Windows build under
 * Debian's Wine 8.0, which lacks ProcessPrng (Rust's std asks for it at start; Windows 10 and
 * later have it). It forwards to RtlGenRandom (advapi32's SystemFunction036). scripts/windows
 * puts it beside hoist.exe in the Wine test directory only: it is never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
