"""Phrase banks for the device-and-account intents of the base data.

technical_issue and account_access overlap on purpose (app errors, logouts), as do
product_info and technical_issue (does feature X work): the confusions a real
support classifier makes live exactly there.
"""

from __future__ import annotations

from refit.datagen.phrasebank import IntentBank

ACCOUNT_ACCESS = IntentBank(
    requests=(
        "I can't log in to my account, it says my password is wrong.",
        "The password reset email never arrives.",
        "My account is locked after too many attempts.",
        "I changed my phone number and now I can't get the two-factor code.",
        "How do I change the email address on my account?",
        "I think someone else has access to my account.",
        "The login page just keeps reloading on {platform}.",
        "I'm not receiving the verification code by text message.",
        "It says there's no account with my email, but I've been a customer for years.",
        "Can you unlock my account? It's registered to {email}.",
        "I got an alert about a sign-in from a device I don't own.",
        "Sign in with Google stopped working for me.",
        "I forgot which email address I used to sign up.",
        "The app logs me out every few minutes on {platform}.",
        "Two-factor authentication is on but I lost my phone.",
        "The reset link says it has expired every time I click it.",
    ),
    fragments=(
        "cant log in",
        "forgot password",
        "reset link not working",
        "locked out of my account",
        "not getting the 2fa code",
        "account hacked??",
        "login keeps failing",
        "how do i change my email",
        "verification code never comes",
        "password reset email missing",
    ),
    context=(
        "I haven't logged in for a few months.",
        "I got a new phone last week.",
        "I already checked my spam folder.",
        "I mostly use the app on {platform}.",
        "My partner and I share this account.",
        "I've tried resetting the password {count} times.",
    ),
    details=(
        "The email on the account is {email}.",
        "It shows {error} right after I enter my password.",
        "I need to get at my {plan} recordings today.",
        "I didn't change anything on my side.",
        "I'm happy to verify my identity however you need.",
    ),
)

TECHNICAL_ISSUE = IntentBank(
    requests=(
        "My {product} won't connect to wifi anymore.",
        "The app crashes as soon as I open it on {platform}.",
        "I keep getting error {error} when I try to sync.",
        "The firmware update failed halfway and now the {product} won't turn on.",
        "{feature} stopped working after the latest update.",
        "My {product} goes offline every night around midnight.",
        "The {product} battery drains in a day instead of a month.",
        "The live view is black on {platform} but works on my other phone.",
        "Notifications from the {product} arrive hours late.",
        "The setup gets stuck at 90 percent every time.",
        "Your app shows {error} and then closes.",
        "The {product} is blinking red and won't pair.",
        "Since {date} the {feature} feature does nothing.",
        "I reset the {product} to factory settings and it still doesn't work.",
        "The video from my {product} keeps freezing.",
        "The app won't install on {platform}.",
    ),
    fragments=(
        "app keeps crashing",
        "{product} not working",
        "error {error}",
        "wont connect to wifi",
        "device offline again",
        "update failed",
        "{feature} broken",
        "getting {error} please help",
        "it keeps disconnecting",
        "blinking red light??",
        "app wont open",
    ),
    context=(
        "I've had the {product} for about {months} months without problems.",
        "It started right after the update on {date}.",
        "I've restarted the router and the device.",
        "I'm on the latest version of the app on {platform}.",
        "Nothing has changed on my home network.",
        "I followed the troubleshooting guide on your site.",
    ),
    details=(
        "The error code is {error}.",
        "It happens on {platform} and on my laptop too.",
        "The light on the front is flashing orange.",
        "I've reinstalled the app twice.",
        "My internet works fine on every other device.",
    ),
)

PRODUCT_INFO = IntentBank(
    requests=(
        "Does the {product} work with {platform}?",
        "What's the difference between the {product} and the {product2}?",
        "Will the {product} be back in stock soon?",
        "How long does the battery last on the {product}?",
        "Does {plan} include {feature}?",
        "Can the {product} be used outdoors in the rain?",
        "What's the warranty on the {product}?",
        "Is there a monthly fee to use the {product}, or is {plan} optional?",
        "Can I connect more than {count} devices to one hub?",
        "Does the {product} record without a subscription?",
        "What are the dimensions of the {product}?",
        "Is the {product} compatible with Alexa and Google Home?",
        "Do you offer student discounts on {plan}?",
        "Will there be a newer version of the {product} this year?",
        "Does the {product} need a separate bridge, or can it run on its own?",
        "How much storage do I get with {plan}?",
    ),
    fragments=(
        "does it work with {platform}",
        "is the {product} waterproof",
        "battery life?",
        "when is it back in stock",
        "whats the difference between {product} and {product2}",
        "does {plan} include {feature}",
        "how long is the warranty",
        "do i need a hub for this?",
        "any discount codes",
        "price of the {product}?",
    ),
    context=(
        "I'm thinking about buying a {product} for my parents.",
        "I already own a {product}.",
        "I'm comparing you with a couple of other brands.",
        "My flat has pretty thick walls.",
        "I'm mostly interested in {feature}.",
        "I saw the {product} in a review last week.",
    ),
    details=(
        "I use {platform} for everything at home.",
        "My budget is around {amount}.",
        "I'd need it to work without a monthly plan.",
        "I'm planning to buy {count} of them.",
        "A link to the spec sheet would be great.",
    ),
)
