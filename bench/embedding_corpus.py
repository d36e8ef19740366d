"""Synthetic model outputs for the embedding-drift benchmark: a stable support-assistant mix and two shifts.

No dataset can be downloaded here, so answers are composed from parts: each topic has
openings, bodies and closings written for it, combined at random, which gives
thousands of distinct, fluent-enough outputs per topic. ``stable`` is a customer-support
assistant (orders, shipping, refunds, accounts, billing); ``topic`` is the same
assistant answering programming questions; ``language`` is the support assistant
answering in Spanish; ``tone`` the same answers in a curt register; ``length`` the same
answers three times as long.
"""

from __future__ import annotations

import random

_SUPPORT_OPEN = [
    "Thanks for reaching out.", "Happy to help with that.", "I understand the frustration.", "Good question.",
    "Thanks for your patience.", "I looked into your account.", "Sorry for the trouble.", "Let me check that for you.",
]
_SUPPORT_BODY = [
    "Your order {n} shipped yesterday and should arrive within {d} business days.",
    "The refund for order {n} was issued and will appear on your card in {d} to 10 days.",
    "You can change the delivery address from the Orders page until the parcel leaves our warehouse.",
    "Your subscription renews on the {d}th; you can cancel any time from Account settings.",
    "The charge of ${n} is the annual plan you selected at checkout.",
    "I have reset your password; the link in your email is valid for {d} hours.",
    "Returns are free within 30 days if the item is unused and in its original packaging.",
    "The tracking number for your parcel is {n}; the courier updates it every evening.",
    "We applied a ${d} credit to your account for the late delivery.",
    "Your invoice for last month is available under Billing, then Invoices.",
    "The item is back in stock and we reserved one for you for {d} days.",
    "To update your payment method, open Billing and choose Replace card.",
    "Your account was locked after {d} failed sign-ins; it unlocks automatically after an hour.",
    "Exchanges ship as soon as we receive the original item at our warehouse.",
    "The discount code expired on the {d}th, but I applied the same discount manually.",
]
_SUPPORT_CLOSE = [
    "Is there anything else I can help you with?", "Let me know if you have other questions.",
    "Have a great day!", "I'm here if you need anything else.", "", "Thanks again for shopping with us.",
]

_CODE_OPEN = ["Here is how to do it.", "Good question.", "You can solve this in a few lines.", "This is a common issue.", "Try the following.", ""]
_CODE_BODY = [
    "Use a dictionary comprehension to invert the mapping: {{v: k for k, v in d.items()}}.",
    "The TypeError means you are calling len() on an integer; convert the value with str() first.",
    "In pandas, group by the column and call agg with a list of functions to get several statistics at once.",
    "Wrap the request in a try/except block and retry {d} times with exponential backoff.",
    "Your SQL query needs a LEFT JOIN so that customers without orders are kept in the result.",
    "Run git rebase -i HEAD~{d} and mark the commits you want to squash with 's'.",
    "A list is mutable and cannot be a dictionary key; use a tuple instead.",
    "Set the environment variable before the process starts, for example in the Dockerfile with ENV.",
    "The recursion never stops because the base case checks n == 0 while n can become negative.",
    "Use asyncio.gather to run the {d} coroutines concurrently and collect their results in order.",
    "In JavaScript, await only works inside an async function; mark the handler async.",
    "Add an index on the user_id column; the query planner is scanning all {n} rows.",
    "The regex needs a non-greedy quantifier: .*? stops at the first closing tag.",
    "Memoize the function with functools.lru_cache to avoid recomputing the same subproblems.",
    "Your Makefile target needs a tab, not spaces, before each recipe line.",
]
_CODE_CLOSE = ["Hope that helps!", "Let me know if the error persists.", "", "That should fix it."]

_ES_OPEN = ["Gracias por escribirnos.", "Con gusto le ayudo.", "Entiendo la molestia.", "Lamento el inconveniente.", "Permítame revisarlo."]
_ES_BODY = [
    "Su pedido {n} salió ayer y llegará en {d} días hábiles.",
    "El reembolso del pedido {n} ya fue emitido y aparecerá en su tarjeta en {d} a 10 días.",
    "Puede cambiar la dirección de entrega desde la página de Pedidos mientras el paquete no salga del almacén.",
    "Su suscripción se renueva el día {d}; puede cancelarla cuando quiera desde Configuración de la cuenta.",
    "El cargo de {n} dólares corresponde al plan anual que eligió al pagar.",
    "Restablecí su contraseña; el enlace del correo es válido durante {d} horas.",
    "Las devoluciones son gratuitas durante 30 días si el artículo no se ha usado.",
    "El número de seguimiento de su paquete es {n}; la empresa de mensajería lo actualiza cada noche.",
    "Aplicamos un crédito de {d} dólares a su cuenta por la entrega tardía.",
    "Su factura del mes pasado está disponible en Facturación.",
]
_ES_CLOSE = ["¿Hay algo más en lo que pueda ayudarle?", "Quedo atento a sus preguntas.", "¡Que tenga un buen día!", ""]

# The same assistant in another register: curt, impatient, blaming the user.
_CURT_OPEN = ["As I already said,", "Read the FAQ next time.", "Again:", "This is explained on the website.", "Obviously,", "Look,"]
_CURT_CLOSE = ["Don't ask again.", "That's all.", "Figure out the rest yourself.", "Stop contacting us about this.", ""]

TOPICS = {
    "stable": (_SUPPORT_OPEN, _SUPPORT_BODY, _SUPPORT_CLOSE),
    "tone": (_CURT_OPEN, _SUPPORT_BODY, _CURT_CLOSE),
    "topic": (_CODE_OPEN, _CODE_BODY, _CODE_CLOSE),
    "language": (_ES_OPEN, _ES_BODY, _ES_CLOSE),
}


def outputs(topic: str, count: int, seed: int = 0) -> list[str]:
    """``count`` distinct outputs of ``topic`` (one or two body sentences between an opening and a closing).

    ``length`` is the stable assistant writing four to six body sentences instead.
    """
    lengths = (4, 5, 6) if topic == "length" else (1, 1, 2)
    openings, bodies, closings = TOPICS["stable" if topic == "length" else topic]
    rng = random.Random(f"{topic}-{seed}")
    seen: set[str] = set()
    while len(seen) < count:
        chosen = rng.sample(bodies, rng.choice(lengths))
        body = " ".join(sentence.format(n=rng.randint(1000, 99999), d=rng.randint(2, 14)) for sentence in chosen)
        seen.add(" ".join(part for part in (rng.choice(openings), body, rng.choice(closings)) if part))
    return sorted(seen)
