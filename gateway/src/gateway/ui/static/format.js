// Small formatting helpers: tokens, money (decimal strings, never parsed into floats), prices.

const SYMBOLS = { CNY: "¥", USD: "$", EUR: "€" };

export function currency(code) {
  return SYMBOLS[code] ?? `${code} `;
}

/** A conversation's title as shown: one of only spaces would leave nothing to read or click. */
export function title(text) {
  return text.trim() ? text : "(untitled)";
}

export function number(value) {
  return (Number(value) || 0).toLocaleString("en-US");
}

export function tokens(count) {
  return `${number(count)} ${Number(count) === 1 ? "token" : "tokens"}`;
}

/** A bill as the API gives it ("0.0123"), shown as is: money is never rounded through a float. */
export function money(amount, code = "CNY") {
  return `${currency(code)}${amount ?? "0.0000"}`;
}

/** Trim a decimal price string ("0.000800" → "0.0008") without converting it to a number. */
function price(value) {
  if (value === null || value === undefined) return "?";
  const text = String(value);
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

/** The prices of a model, per 1,000 tokens: "¥0.0008 in / ¥0.002 out per 1K tokens". */
export function modelPrice(pricing) {
  if (!pricing) return "price unknown";
  const symbol = currency(pricing.currency ?? "CNY");
  const first = pricing.billing_mode === "tier" && pricing.tiers?.length ? pricing.tiers[0] : pricing;
  const text = `${symbol}${price(first.input_price)} in / ${symbol}${price(first.output_price)} out per 1K tokens`;
  return pricing.billing_mode === "tier" && pricing.tiers?.length > 1 ? `from ${text}` : text;
}

/** 128000 → "128K", for tier bounds. */
function count(n) {
  return n >= 1000 && n % 1000 === 0 ? `${n / 1000}K` : String(n);
}

/** Every tier of a tiered price, for the line under the picker. */
export function tierDetails(pricing) {
  if (!pricing || pricing.billing_mode !== "tier" || !pricing.tiers?.length) return modelPrice(pricing);
  const symbol = currency(pricing.currency ?? "CNY");
  const parts = pricing.tiers.map((tier) => {
    const range = tier.max_tokens == null ? `over ${count(tier.min_tokens)}` : `up to ${count(tier.max_tokens)}`;
    return `${range}: ${symbol}${price(tier.input_price)} / ${symbol}${price(tier.output_price)}`;
  });
  return `Tiered by input tokens, in / out per 1K — ${parts.join("; ")}`;
}
