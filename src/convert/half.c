/*
 * half.c - float32 <-> f16 / bf16 conversions of the converter, rounding
 * to nearest even, kept apart from convert.c so that tests can use them
 * without the GGUF writer.
 */
#include <math.h>
#include <string.h>

#include "convert/convert.h"

uint16_t grok_conv_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float grok_conv_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t grok_conv_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t abs = u & 0x7fffffff;
    if (abs > 0x7f800000)
        return (uint16_t)(sign | 0x7e00);
    if (abs >= 0x477ff000) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00);
    if (abs < 0x38800000) { /* below 2^-14: subnormal or zero */
        if (abs < 0x33000000) /* below 2^-25: rounds to 0 */
            return (uint16_t)sign;
        uint32_t e = abs >> 23;
        uint32_t mant = (abs & 0x7fffff) | 0x800000;
        /* value = mant * 2^(e-150); in f16's subnormal unit 2^-24 that is
         * mant * 2^(e-126), a right shift by 14..24 */
        uint32_t rs = 126 - e;
        uint32_t q = mant >> rs;
        uint32_t rem = mant & ((1u << rs) - 1);
        uint32_t half = 1u << (rs - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = ((abs >> 13) - (112u << 10));
    uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float grok_conv_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float f;
    if (e == 0) {
        f = ldexpf((float)m, -24);
        return sign ? -f : f;
    }
    uint32_t u = e == 31 ? (sign | 0x7f800000 | (m << 13)) : (sign | ((e + 112) << 23) | (m << 13));
    memcpy(&f, &u, 4);
    return f;
}

