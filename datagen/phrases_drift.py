"""Phrases that only drifted scenarios use.

`DRIFT_BANKS` re-express the base intents the way customers of a later product line
talk: preorders, mesh networks, instalment payments, RMAs. The wording avoids the
base banks' giveaway words on purpose, so a model trained on base data loses
accuracy while the label set stays the same. `PRIVACY` is the intent the base data
never contains.
"""

from __future__ import annotations

from refit.datagen.phrasebank import IntentBank

DRIFT_BANKS: dict[str, IntentBank] = {
    "billing": IntentBank(
        requests=(
            "My statement lists a {amount} line item from you that I can't reconcile.",
            "The {payment} instalment for the {product} was taken early.",
            "Your system debited me for the {product} on {date}, but the balance looks off.",
            "Every top-up through {payment} bounces with {error}.",
            "Could someone audit the deductions on my ledger this cycle?",
            "I'm being double-debited under {plan}.",
            "The {payment} authorisation hold of {amount} never dropped off.",
            "Loyalty points were supposed to offset {amount} but didn't.",
        ),
        fragments=(
            "debited 2x",
            "{payment} took money early",
            "weird deduction {amount}",
            "hold still on my account",
            "statement doesnt reconcile",
        ),
        context=(
            "I switched to paying through {payment} when the {product} launched.",
            "My budgeting app flagged this deduction.",
            "I bought into {plan} at launch pricing.",
        ),
        details=(
            "The reference on the debit is {ticket}.",
            "It was posted on {date}.",
            "This began right after I enabled {feature}.",
        ),
    ),
    "cancellation": IntentBank(
        requests=(
            "Wind down my {plan} membership, I'm done with it.",
            "Terminate the {product} preorder, I've had second thoughts.",
            "Opt me out of the next renewal cycle for {plan}.",
            "Deactivate the recurring {payment} instalments for the {product}.",
            "I'd like to walk away from {plan} once this cycle lapses.",
            "Please discontinue my {product} bundle.",
            "Un-enrol me from {plan} right away.",
            "Get me off the {product} preorder list.",
        ),
        fragments=(
            "opt me out",
            "kill my {plan}",
            "drop the preorder",
            "deactivate renewal",
            "done with {plan}, end it",
        ),
        context=(
            "{plan} hasn't been worth it for me.",
            "The {product} launch slipped too many times.",
            "I'm consolidating my memberships.",
        ),
        details=(
            "Make sure {payment} isn't debited again.",
            "I'll keep the {product} I already have.",
            "Reference {ticket} from my earlier chat.",
        ),
    ),
    "shipping": IntentBank(
        requests=(
            "The {carrier} parcel hasn't budged from the sorting hub.",
            "My {product} preorder seems to be in transit limbo.",
            "Has the {product} consignment been dispatched yet?",
            "The drop-off window for my {product} came and went.",
            "The locker code for my {product} never came through.",
            "Courier status has been frozen on out-for-delivery since {date}.",
            "The {product} consignment shows as handed over but I'm empty-handed.",
            "The ETA on the {product} preorder keeps sliding.",
        ),
        fragments=(
            "parcel frozen in transit",
            "eta on {product}??",
            "no locker code",
            "consignment missing",
            "courier stuck since {date}",
        ),
        context=(
            "I preordered the {product} the day it was announced.",
            "I picked {carrier} at checkout.",
            "I'm relying on it for a trip.",
        ),
        details=(
            "The consignment ID is {tracking}.",
            "The status last changed on {date}.",
            "My building has a parcel room.",
        ),
    ),
    "returns": IntentBank(
        requests=(
            "I want to send the {product} back under the trial guarantee.",
            "Can I swap the {product} for store credit?",
            "The {product} came scuffed, so I'm sending it back.",
            "How do I start an RMA for the {product}?",
            "Trade-in for my {product} was approved but the credit never landed.",
            "I'd like to hand the {product} back at a partner store.",
            "The {product} doesn't suit me; what's the send-back process?",
            "RMA {ticket} is still open even though {carrier} delivered it to you.",
        ),
        fragments=(
            "start rma",
            "send back {product}",
            "credit for trade-in?",
            "{product} came scuffed",
            "rma still open",
        ),
        context=(
            "I'm still inside the trial window.",
            "The {product} was a launch-week purchase.",
            "Everything is boxed up again.",
        ),
        details=(
            "The RMA number is {ticket}.",
            "I'd accept {payment} credit.",
            "The scuffs are on the side panel.",
        ),
    ),
    "account_access": IntentBank(
        requests=(
            "My {product} profile won't accept my passkey.",
            "The {platform} sign-in handshake fails with {error}.",
            "I'm stuck in a verification loop on {platform}.",
            "My {plan} workspace says my credentials were revoked.",
            "The magic link never lands in my inbox.",
            "Biometric unlock stopped recognising me.",
            "My household admin removed me and I can't rejoin.",
            "The authenticator token doesn't match anymore.",
        ),
        fragments=(
            "passkey rejected",
            "stuck in verify loop",
            "magic link never came",
            "credentials revoked??",
            "cant get into {plan}",
        ),
        context=(
            "I migrated my sign-in to passkeys recently.",
            "I added a new phone to {plan}.",
            "I'm the household admin for {plan}.",
        ),
        details=(
            "What I see is {error}.",
            "The profile is under {email}.",
            "It happens on {platform} only.",
        ),
    ),
    "technical_issue": IntentBank(
        requests=(
            "{feature} is misbehaving on my {product}.",
            "The {product} throws {error} every time it handshakes.",
            "My {product} mesh keeps dropping nodes.",
            "The {product} is stuck in a reboot cycle.",
            "{feature} lags several seconds behind on {platform}.",
            "The {product} overheats and throttles after an hour.",
            "Since the patch, the {product} shows {error} on boot.",
            "The {product} won't calibrate no matter what I try.",
        ),
        fragments=(
            "{error} again",
            "{product} rebooting nonstop",
            "{feature} glitching",
            "mesh dropping",
            "wont calibrate",
        ),
        context=(
            "I run three {product} units on one mesh.",
            "The glitch began after the overnight patch.",
            "I power-cycled everything.",
        ),
        details=(
            "The diagnostics log shows {error}.",
            "It reproduces on {platform}.",
            "The status LED pulses purple.",
        ),
    ),
    "product_info": IntentBank(
        requests=(
            "Is {feature} on the {product} itself or only with {plan}?",
            "What sensors does the {product} pack?",
            "Will the {product} interoperate with my existing gear?",
            "Can the {product} run {feature} locally without the cloud?",
            "What's the range of the {product} mesh?",
            "Is the {product} launch bundle still orderable?",
            "How does the {product} stack up against the {product2} spec-wise?",
            "Can I buy the {product} with {payment}?",
        ),
        fragments=(
            "{product} specs?",
            "does {product} do {feature}",
            "range of the mesh?",
            "{product} vs {product2}",
            "launch bundle still on?",
        ),
        context=(
            "I'm weighing up the new {product}.",
            "I saw {feature} in the launch video.",
            "I'm the early adopter type.",
        ),
        details=(
            "I'd run it on {platform}.",
            "Budget is about {amount}.",
            "I'd want {count} units.",
        ),
    ),
    "order_change": IntentBank(
        requests=(
            "Reroute my {product} preorder to a pickup locker.",
            "Bump my {product} preorder up to the launch bundle.",
            "Switch the finish on my {product} preorder to graphite.",
            "Split my {product} preorder so part of it goes out early.",
            "Amend the consignee on {order} to my flatmate.",
            "Redirect the {product} to {address}.",
            "Tack a {product2} onto my preorder.",
            "Push my {product} drop-off back until after {date}.",
        ),
        fragments=(
            "reroute preorder",
            "amend consignee",
            "add {product2} to preorder",
            "switch finish to graphite",
            "redirect to locker",
        ),
        context=(
            "My {product} preorder hasn't been fulfilled yet.",
            "I'm relocating before launch day.",
            "I'd rather have the bundle.",
        ),
        details=(
            "The preorder reference is {order}.",
            "Any difference can go on {payment}.",
            "Locker pickup is easier for me.",
        ),
    ),
}

PRIVACY = IntentBank(
    requests=(
        "Please delete all the personal data you hold about me.",
        "I'd like a copy of every piece of data you have on my account, under GDPR.",
        "How long do you keep the video recordings from my {product}?",
        "Who do you share my personal information with?",
        "I want to withdraw my consent for marketing emails and data sharing.",
        "Can you erase my account and all the footage stored in the cloud?",
        "I'm making a subject access request for my data.",
        "Where are my {product} recordings physically stored, the EU or the US?",
        "Remove my phone number and home address from your systems.",
        "Do you sell customer data to advertisers?",
        "I want to export my account history and camera clips.",
        "Please confirm in writing that my data has been deleted.",
        "Was my information part of the data breach in the news?",
        "How do I opt out of analytics tracking in the app?",
        "Your privacy policy isn't clear about voice recordings; can you explain?",
    ),
    fragments=(
        "delete my data",
        "gdpr request",
        "want a copy of my data",
        "erase everything about me",
        "who sees my recordings",
        "opt out of tracking",
        "remove my personal info",
        "do you sell my data",
        "export my data pls",
    ),
    context=(
        "I'm worried about how my camera footage is used.",
        "I've read your privacy policy twice.",
        "I'm closing down all my online accounts.",
        "A friend told me about the breach.",
        "I live in the EU, so GDPR applies.",
    ),
    details=(
        "Please reply within the legal 30 days.",
        "The account email is {email}.",
        "I also want the footage from my {product} erased.",
        "Send the export to {email}.",
        "I don't consent to any further processing.",
    ),
)
